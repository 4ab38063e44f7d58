variable "environment" {
  description = "Which collector this is: prod or test. Becomes SPOTLAKE_ENV and part of every resource name."
  type        = string
  validation {
    condition     = contains(["prod", "test"], var.environment)
    error_message = "environment must be \"prod\" or \"test\"."
  }
}

variable "aws_region" {
  description = "Region of the buckets, the table and the ECS cluster (SPOTLAKE_AWS_REGION)."
  type        = string
  default     = "us-west-2"
}

variable "write_bucket" {
  description = "The bucket this environment writes (and reads first): owned elsewhere (shared), never managed here."
  type        = string
}

variable "read_bucket" {
  description = "The bucket read after the write bucket (production's for test); only read, never managed here."
  type        = string
}

variable "dynamodb_table" {
  description = "The history table this environment writes: azure (prod) or azure-test (test)."
  type        = string
}

variable "prod_bucket" {
  description = "Production's bucket: a non-prod environment may not name it as its write bucket."
  type        = string
  default     = "spotlake"
}

variable "prod_table" {
  description = "Production's history table: a non-prod environment may not name it as its table."
  type        = string
  default     = "azure"
}

variable "azure_auth_table" {
  description = "The legacy table holding the Azure service principal (item login_auth_az_true); read only."
  type        = string
  default     = "AzureAuth"
}

variable "webhook_parameter_name" {
  description = "SSM SecureString holding the Slack webhook URL of the run-failure alert (no leading /); set out of band, never managed here."
  type        = string
  default     = "error_notification_slack_webhook_url"
  validation {
    condition     = !startswith(var.webhook_parameter_name, "/")
    error_message = "webhook_parameter_name is a bare name such as error_notification_slack_webhook_url (the ARN adds the /)."
  }
}

variable "image_uri" {
  description = "ECR image (built from the repository's Dockerfile) run by the webserver, the daemon and every run."
  type        = string
  validation {
    condition     = can(regex("^[0-9]{12}\\.dkr\\.ecr\\.[a-z0-9-]+\\.amazonaws\\.com/[^:@]+[:@].+$", var.image_uri))
    error_message = "image_uri must be an ECR image with a tag or digest, e.g. 123456789012.dkr.ecr.us-west-2.amazonaws.com/spotlake-azure:1.0.0."
  }
}

variable "vpc_id" {
  description = "VPC of the ECS tasks and the Postgres instance."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (with a NAT route to Azure and AWS APIs) for the tasks and the database; at least two AZs."
  type        = list(string)
  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "subnet_ids needs at least two subnets (RDS subnet groups span two availability zones)."
  }
}

variable "ui_ingress_cidrs" {
  description = "CIDRs (VPN, bastion) allowed to reach the read-only Dagster UI on port 3000. It has no login: keep this private."
  type        = list(string)
  default     = []
}

variable "admin_session_hours" {
  description = "Hours after which an admin UI task (started on demand, see infra/README.md) stops by itself."
  type        = number
  default     = 8
  validation {
    condition     = var.admin_session_hours >= 1 && var.admin_session_hours <= 24
    error_message = "admin_session_hours must be between 1 and 24."
  }
}

variable "db_instance_class" {
  description = "RDS instance class of the Dagster instance storage."
  type        = string
  default     = "db.t4g.micro"
}

variable "run_cpu" {
  description = "CPU units of each run task (1024 = 1 vCPU)."
  type        = number
  default     = 1024
}

variable "run_memory" {
  description = "Memory (MiB) of each run task; a full-scale partition peaks at a few GiB."
  type        = number
  default     = 4096
}

variable "use_fargate_spot" {
  description = "Launch runs on Fargate Spot (a run interrupted by Spot fails and is retried by the next tick or a re-run)."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention of the webserver, daemon and run logs."
  type        = number
  default     = 90
}
