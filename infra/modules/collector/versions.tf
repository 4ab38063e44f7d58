terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70, < 7"
    }
  }
}

data "aws_caller_identity" "current" {}
