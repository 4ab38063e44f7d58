# Production: writes and reads Azure's keys of the shared `spotlake` bucket (owned elsewhere), the table `azure`.
terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70, < 7"
    }
  }
  # Partial configuration: terraform init -backend-config=backend.hcl (see infra/README.md).
  backend "s3" {}
}

variable "aws_region" {
  description = "Region of the collector."
  type        = string
  default     = "us-west-2"
}

variable "image_uri" {
  description = "ECR image built from the repository's Dockerfile (tag or digest)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the collector."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (two AZs or more) with a NAT route."
  type        = list(string)
}

variable "ui_ingress_cidrs" {
  description = "CIDRs allowed to reach the Dagster UI (VPN, bastion)."
  type        = list(string)
  default     = []
}

provider "aws" {
  region = var.aws_region
  default_tags {
    tags = {
      Project     = "spotlake"
      Component   = "azure-collector"
      Environment = "prod"
    }
  }
}

module "collector" {
  source = "../../modules/collector"

  environment    = "prod"
  write_bucket   = "spotlake"
  read_bucket    = "spotlake"
  dynamodb_table = "azure"

  aws_region       = var.aws_region
  image_uri        = var.image_uri
  vpc_id           = var.vpc_id
  subnet_ids       = var.subnet_ids
  ui_ingress_cidrs = var.ui_ingress_cidrs
}

output "collector" {
  description = "Names of what the collector writes and runs on."
  value = {
    write_bucket = module.collector.write_bucket
    table        = module.collector.dynamodb_table
    cluster      = module.collector.cluster_name
    run_role     = module.collector.run_role_arn
    log_group    = module.collector.log_group
    admin_task   = module.collector.admin_task_definition
    operator     = module.collector.operator_policy_arn
    network      = module.collector.network
    query_api    = module.collector.query_api_url # the web site's history query
  }
}

output "bucket_owner_requirements" {
  description = "Hand this to the owner of the write bucket (docs/security.md)."
  value       = module.collector.bucket_owner_requirements
}
