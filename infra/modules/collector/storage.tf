# The write bucket and the history table. The read bucket is only read: it belongs to production's state.

locals {
  write_bucket_arn = "arn:aws:s3:::${var.write_bucket}"
  read_bucket_arn  = "arn:aws:s3:::${var.read_bucket}"
  table_arn        = "arn:aws:dynamodb:${var.aws_region}:${local.account_id}:table/${var.dynamodb_table}"
  auth_table_arn   = "arn:aws:dynamodb:${var.aws_region}:${local.account_id}:table/${var.azure_auth_table}"
  account_id       = data.aws_caller_identity.current.account_id

  # The only objects the collector publishes with ACL public-read (legacy-collector.md section 5).
  # `?` matches one character in IAM, so the dataset pattern is exactly rawdata/azure/YYYY/MM/DD/HH-MM-SS.csv.gz.
  public_object_keys = [
    "latest_data/latest_azure.json",
    "rawdata/azure/????/??/??/??-??-??.csv.gz",
    "query-selector/azure/query_selector.json",
  ]
  # Azure's private prefixes: the bucket refuses public ACLs there whoever asks. Listed rather than "everything
  # but the public keys" because production's bucket is shared with the other SpotLake collectors.
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

  bucket_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [local.write_bucket_arn, "${local.write_bucket_arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
      {
        Sid       = "DenyPublicAclOnPrivateAzureKeys"
        Effect    = "Deny"
        Principal = "*"
        Action    = ["s3:PutObject", "s3:PutObjectAcl"]
        Resource  = [for prefix in local.private_object_prefixes : "${local.write_bucket_arn}/${prefix}"]
        Condition = { StringEquals = { "s3:x-amz-acl" = ["public-read", "public-read-write", "authenticated-read"] } }
      },
    ]
  }
}

resource "aws_s3_bucket" "write" {
  #checkov:skip=CKV_AWS_144:cross-region replication is not part of the legacy setup; versioning covers overwrites
  #checkov:skip=CKV_AWS_18:access logging needs a separate log bucket, out of this module's scope
  #checkov:skip=CKV2_AWS_62:no consumer of S3 event notifications
  #checkov:skip=CKV_AWS_145:public-read objects cannot be read anonymously under SSE-KMS; SSE-S3 is set below
  #checkov:skip=CKV2_AWS_6:the public access block below deliberately honours the public-read object ACLs
  bucket = var.write_bucket

  lifecycle {
    prevent_destroy = true
    precondition {
      condition     = local.not_prod_guard
      error_message = "A non-prod environment must not write production's bucket or table (check write_bucket and dynamodb_table)."
    }
  }
}

resource "aws_s3_bucket_versioning" "write" {
  bucket = aws_s3_bucket.write.id
  versioning_configuration {
    status = "Enabled"
  }
}

# ACLs stay usable (BucketOwnerPreferred): the public outputs are written with ACL public-read, as the legacy did.
resource "aws_s3_bucket_ownership_controls" "write" {
  #checkov:skip=CKV2_AWS_65:the legacy public outputs are published with ACL public-read
  bucket = aws_s3_bucket.write.id
  rule {
    object_ownership = "BucketOwnerPreferred"
  }
}

# Public ACLs must be honoured for the three public outputs; public bucket policies stay blocked. Which objects
# may be public is decided by the task role (PutObjectAcl on public_object_keys only) and the bucket policy.
resource "aws_s3_bucket_public_access_block" "write" {
  #checkov:skip=CKV_AWS_53:the public outputs are public-read objects (legacy contract)
  #checkov:skip=CKV_AWS_55:the public outputs are public-read objects (legacy contract)
  bucket                  = aws_s3_bucket.write.id
  block_public_acls       = false
  ignore_public_acls      = false
  block_public_policy     = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "write" {
  bucket = aws_s3_bucket.write.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

# latest_azure.json and the query selector are rewritten every 10 minutes: keep old versions a month, not forever.
resource "aws_s3_bucket_lifecycle_configuration" "write" {
  bucket = aws_s3_bucket.write.id
  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "aws_s3_bucket_policy" "write" {
  bucket     = aws_s3_bucket.write.id
  policy     = jsonencode(local.bucket_policy)
  depends_on = [aws_s3_bucket_public_access_block.write]
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

  lifecycle {
    prevent_destroy = true
    precondition {
      condition     = local.not_prod_guard
      error_message = "A non-prod environment must not write production's bucket or table (check write_bucket and dynamodb_table)."
    }
  }
}
