# The buckets are not managed here. Production's `spotlake` is shared with the other SpotLake collectors, and
# `spotlake-test` with their test environments: versioning, the public access block, Object Ownership, encryption,
# lifecycle rules, access logging and the bucket policy are one setting per bucket, owned by the bucket's owner.
# Managing any of them from here would replace every other collector's (one aws_s3_bucket_policy or lifecycle
# configuration is the bucket's whole policy or rule set). This module only checks that the buckets exist and
# renders what Azure needs from their owner (output `bucket_owner_requirements`, docs/security.md); the run role
# (iam.tf) is what keeps an Azure run to Azure's keys. The history table is Azure's own and is managed below.

locals {
  write_bucket_arn = "arn:aws:s3:::${var.write_bucket}"
  read_bucket_arn  = "arn:aws:s3:::${var.read_bucket}"
  table_arn        = "arn:aws:dynamodb:${var.aws_region}:${local.account_id}:table/${var.dynamodb_table}"
  auth_table_arn   = "arn:aws:dynamodb:${var.aws_region}:${local.account_id}:table/${var.azure_auth_table}"
  account_id       = data.aws_caller_identity.current.account_id

  # The history's monthly archive (archive.tf): Parquet, lookup files and manifests, all published public-read.
  archive_prefix = "archive/azure/history/"

  # Every key the Azure collector reads or writes in a shared bucket (legacy-collector.md section 5, README Storage).
  # Nothing else in the bucket is Azure's: other collectors write rawdata/aws/*, latest_data/latest_aws.json, ...
  azure_object_patterns = [
    "rawdata/azure/*",
    "latest_data/latest_azure.json",
    "latest_data/azure/*",
    "query-selector/azure/*",
    "query-selector/associated/association_azure.json",
    "sps-collector/azure/*",
    "dagster/azure/*",
    "${local.archive_prefix}*",
  ]
  # The only objects the collector publishes with ACL public-read: the legacy public files (legacy-collector.md
  # section 5) and the history's monthly archive.
  # `?` matches one character in IAM, so the dataset pattern is exactly rawdata/azure/YYYY/MM/DD/HH-MM-SS.csv.gz.
  public_object_keys = [
    "latest_data/latest_azure.json",
    "rawdata/azure/????/??/??/??-??-??.csv.gz",
    "query-selector/azure/query_selector.json",
    "query-selector/associated/association_azure.json",
    # The monthly archive of the history (archive.tf), a public research dataset: every object is public-read.
    "${local.archive_prefix}changes/month=????-??/part-*.parquet",
    "${local.archive_prefix}checkpoints/month=????-??/part-*.parquet",
    "${local.archive_prefix}lookup/????-??/*.json.gz",
    "${local.archive_prefix}manifests/????-??.json",
    "${local.archive_prefix}manifests/????-??.verified.json",
    "${local.archive_prefix}verified-months.json",
  ]
  # Azure's private prefixes: the bucket policy refuses public ACLs there whoever asks.
  private_object_prefixes = [
    "rawdata/azure/spot_price/*",
    "rawdata/azure/spot_if/*",
    "rawdata/azure/sps/*",
    "rawdata/azure/monitoring/*",
    "latest_data/azure/*",
    "dagster/azure/*",
    "sps-collector/azure/*",
  ]
  not_prod_guard = var.environment == "prod" || (var.write_bucket != var.prod_bucket && var.dynamodb_table != var.prod_table)

  # Statements the bucket owner adds to the write bucket's policy (they only name Azure's keys, so they change
  # nothing for the other collectors). Sids are prefixed so they cannot clash with the owner's own.
  azure_bucket_policy_statements = [
    {
      Sid       = "SpotLakeAzureDenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [for pattern in local.azure_object_patterns : "${local.write_bucket_arn}/${pattern}"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    },
    {
      Sid       = "SpotLakeAzureDenyPublicCannedAclOnPrivateKeys"
      Effect    = "Deny"
      Principal = "*"
      Action    = ["s3:PutObject", "s3:PutObjectAcl", "s3:PutObjectVersionAcl"]
      Resource  = [for prefix in local.private_object_prefixes : "${local.write_bucket_arn}/${prefix}"]
      Condition = { StringEquals = { "s3:x-amz-acl" = ["public-read", "public-read-write", "authenticated-read"] } }
    },
    {
      # An ACL can also be set from an XML body, which no header condition sees: on the private prefixes no ACL
      # is ever set or changed, so any ACL write there is refused.
      Sid       = "SpotLakeAzureDenyAclChangesOnPrivateKeys"
      Effect    = "Deny"
      Principal = "*"
      Action    = ["s3:PutObjectAcl", "s3:PutObjectVersionAcl"]
      Resource  = [for prefix in local.private_object_prefixes : "${local.write_bucket_arn}/${prefix}"]
    },
    # The per-grantee ACL headers: the collector never sends them (it uses the canned x-amz-acl public-read), so on
    # Azure's keys, public ones included, a request carrying any of them is refused. One statement per header:
    # several keys in one Null condition would all have to be present to match.
    {
      Sid       = "SpotLakeAzureDenyGrantReadHeader"
      Effect    = "Deny"
      Principal = "*"
      Action    = ["s3:PutObject", "s3:PutObjectAcl", "s3:PutObjectVersionAcl"]
      Resource  = [for pattern in local.azure_object_patterns : "${local.write_bucket_arn}/${pattern}"]
      Condition = { Null = { "s3:x-amz-grant-read" = "false" } }
    },
    {
      Sid       = "SpotLakeAzureDenyGrantReadAcpHeader"
      Effect    = "Deny"
      Principal = "*"
      Action    = ["s3:PutObject", "s3:PutObjectAcl", "s3:PutObjectVersionAcl"]
      Resource  = [for pattern in local.azure_object_patterns : "${local.write_bucket_arn}/${pattern}"]
      Condition = { Null = { "s3:x-amz-grant-read-acp" = "false" } }
    },
    {
      Sid       = "SpotLakeAzureDenyGrantWriteAcpHeader"
      Effect    = "Deny"
      Principal = "*"
      Action    = ["s3:PutObject", "s3:PutObjectAcl", "s3:PutObjectVersionAcl"]
      Resource  = [for pattern in local.azure_object_patterns : "${local.write_bucket_arn}/${pattern}"]
      Condition = { Null = { "s3:x-amz-grant-write-acp" = "false" } }
    },
    {
      Sid       = "SpotLakeAzureDenyGrantFullControlHeader"
      Effect    = "Deny"
      Principal = "*"
      Action    = ["s3:PutObject", "s3:PutObjectAcl", "s3:PutObjectVersionAcl"]
      Resource  = [for pattern in local.azure_object_patterns : "${local.write_bucket_arn}/${pattern}"]
      Condition = { Null = { "s3:x-amz-grant-full-control" = "false" } }
    },
  ]

  # What the write bucket's owner must keep so the collector works and stays contained (docs/security.md).
  bucket_owner_requirements = {
    bucket = var.write_bucket
    # The public outputs are public-read object ACLs (legacy contract): ACLs must stay enabled and honoured.
    object_ownership = ["BucketOwnerPreferred", "ObjectWriter"]
    public_access_block = {
      block_public_acls  = false
      ignore_public_acls = false
    }
    # Public-read objects must stay readable anonymously: SSE-S3, not SSE-KMS.
    default_encryption = "AES256"

    bucket_policy_statements = local.azure_bucket_policy_statements
  }
}

data "aws_s3_bucket" "write" {
  bucket = var.write_bucket
  lifecycle {
    precondition {
      condition     = local.not_prod_guard
      error_message = "A non-prod environment must not write production's bucket or table (check write_bucket and dynamodb_table)."
    }
  }
}

data "aws_s3_bucket" "read" {
  bucket = var.read_bucket
}

resource "aws_dynamodb_table" "history" {
  #checkov:skip=CKV_AWS_119:the AWS managed key is enough for public spot-price data
  name                        = var.dynamodb_table
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.environment == "prod"

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }
  server_side_encryption {
    enabled = true
  }

  # Items carry `expires_at` (epoch seconds, the item's Time + 40 days). Whether TTL is on is the collector's call,
  # made at run time: its guard enables TTL only while every month whose items may expire is archived (in the write
  # bucket's archive/azure/history/) and verified, and disables it otherwise. Terraform names the attribute and never
  # flips the switch: with ignore_changes an apply neither turns TTL off behind the guard nor on before the archive
  # exists. The provider accepts an attribute name with enabled = false and suppresses the diff of a disabled table
  # (a few mid-2024 5.x releases refused that combination; the module needs >= 5.70).
  ttl {
    attribute_name = "expires_at"
    enabled        = false
  }

  lifecycle {
    prevent_destroy = true
    ignore_changes  = [ttl]
    precondition {
      condition     = local.not_prod_guard
      error_message = "A non-prod environment must not write production's bucket or table (check write_bucket and dynamodb_table)."
    }
  }
}
