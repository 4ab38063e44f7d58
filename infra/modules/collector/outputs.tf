output "write_bucket" {
  description = "The bucket this environment writes (owned elsewhere; see bucket_owner_requirements)."
  value       = data.aws_s3_bucket.write.bucket
}

output "dynamodb_table" {
  description = "The history table this environment writes."
  value       = aws_dynamodb_table.history.name
}

output "cluster_name" {
  description = "ECS cluster running the Dagster webserver, daemon and runs."
  value       = aws_ecs_cluster.this.name
}

output "run_role_arn" {
  description = "Task role of every Dagster run (the collector's data access)."
  value       = aws_iam_role.run.arn
}

output "dagster_instance_parameter" {
  description = "SSM parameter holding the rendered dagster.yaml."
  value       = aws_ssm_parameter.dagster_instance.name
}

output "log_group" {
  description = "CloudWatch Logs group of the webserver, daemon and runs."
  value       = aws_cloudwatch_log_group.this.name
}

output "bucket_owner_requirements" {
  description = "What the write bucket's owner must set for this collector, with the bucket policy statements to add (JSON)."
  value       = jsonencode(local.bucket_owner_requirements)
}

output "admin_task_definition" {
  description = "Task definition family of the on-demand admin UI (infra/README.md, Operating production)."
  value       = aws_ecs_task_definition.admin.family
}

output "operator_policy_arn" {
  description = "Managed policy to attach to the operators' role or group: start and reach the admin UI."
  value       = aws_iam_policy.operator.arn
}

output "network" {
  description = "Subnets and security group for `aws ecs run-task` of the admin UI."
  value = {
    subnets        = var.subnet_ids
    security_group = aws_security_group.tasks.id
  }
}
