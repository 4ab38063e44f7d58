# The monthly archive of the history table, as Parquet in the environment's write bucket, and its Athena tables.
#
# The collector writes, each month (all public-read, a research dataset like the legacy public files; storage.tf
# lists the keys in public_object_keys):
#   archive/azure/history/changes/month=YYYY-MM/part-NN.parquet      one row per stored change point
#   archive/azure/history/checkpoints/month=YYYY-MM/part-NN.parquet  one row per series of each daily checkpoint
#   archive/azure/history/lookup/YYYY-MM/<url-quoted pk>.json.gz     per market, read by the query Lambda
#   archive/azure/history/manifests/YYYY-MM.json, YYYY-MM.verified.json
#   archive/azure/history/verified-months.json                       the verified months, read by the query Lambda
# Items of a month leave the table (TTL on expires_at, storage.tf) only once that month is archived and verified:
# the collector's guard switches TTL, with the run role's DescribeTimeToLive/UpdateTimeToLive (iam.tf).
#
# Athena reads `changes` and `checkpoints` through the two Glue tables below. Partitions are projected from the key
# layout (month=YYYY-MM), so no crawler, MSCK REPAIR or ALTER TABLE ADD PARTITION is ever needed: a new month is
# queryable as soon as its objects exist. No Athena workgroup is managed: its query results need a bucket, and the
# shared buckets are owned elsewhere (storage.tf); queries use the caller's own workgroup and results location.

variable "archive_first_month" {
  description = "First month (YYYY-MM) Athena's partition projection offers for the archive; at or before the oldest history item. Months without objects are just empty."
  type        = string
  default     = "2022-01"
  validation {
    condition     = can(regex("^[0-9]{4}-(0[1-9]|1[0-2])$", var.archive_first_month))
    error_message = "archive_first_month is a month such as 2022-01 (YYYY-MM)."
  }
}

locals {
  archive_location = "s3://${var.write_bucket}/${local.archive_prefix}"
  # Glue and Athena names: lower case letters, digits and underscores only.
  archive_database = "spotlake_azure_${var.environment}"

  # The Parquet schema of `changes`, in the files' column order. Glue stores column names in lower case (a
  # mixed-case name would show as a change on every plan) and Athena matches Parquet columns by name whatever their
  # case, so InstanceTier is read as instancetier.
  archive_change_columns = [
    { name = "instancetier", type = "string" },
    { name = "instancetype", type = "string" },
    { name = "region", type = "string" },
    { name = "availabilityzone", type = "string" },
    { name = "ondemandprice", type = "double" },
    { name = "spotprice", type = "double" },
    { name = "savings", type = "double" },
    { name = "if", type = "double" },
    { name = "score", type = "bigint" },
    { name = "desiredcount", type = "bigint" },
    { name = "t2", type = "bigint" },
    { name = "t3", type = "bigint" },
    { name = "time", type = "string" }, # YYYY-MM-DD HH:MM:SS, UTC
  ]
  # A checkpoint row is a change row preceded by the checkpoint's own time.
  archive_checkpoint_leading_columns = [
    { name = "asof", type = "string" }, # YYYY-MM-DD HH:MM:SS, UTC
  ]
  archive_tables = {
    changes     = local.archive_change_columns
    checkpoints = concat(local.archive_checkpoint_leading_columns, local.archive_change_columns)
  }
}

resource "aws_glue_catalog_database" "archive" {
  name        = local.archive_database
  description = "SpotLake Azure history archive (${var.environment}): monthly Parquet in s3://${var.write_bucket}/${local.archive_prefix}"
}

resource "aws_glue_catalog_table" "archive" {
  for_each      = local.archive_tables
  name          = each.key
  database_name = aws_glue_catalog_database.archive.name
  description   = "SpotLake Azure history, ${each.key}, partitioned by month (YYYY-MM), partitions projected"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    EXTERNAL                         = "TRUE"
    classification                   = "parquet"
    "projection.enabled"             = "true"
    "projection.month.type"          = "date"
    "projection.month.format"        = "yyyy-MM"
    "projection.month.range"         = "${var.archive_first_month},NOW"
    "projection.month.interval"      = "1"
    "projection.month.interval.unit" = "MONTHS"
    # $${month} is Athena's placeholder, not a Terraform interpolation
    "storage.location.template" = "${local.archive_location}${each.key}/month=$${month}/"
  }

  partition_keys {
    name = "month"
    type = "string"
  }

  storage_descriptor {
    location      = "${local.archive_location}${each.key}/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
      parameters = {
        "serialization.format" = "1"
      }
    }

    dynamic "columns" {
      for_each = each.value
      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }
}

output "archive_database" {
  description = "Glue database of the history archive: Athena queries `<database>.changes` and `<database>.checkpoints`."
  value       = aws_glue_catalog_database.archive.name
}
