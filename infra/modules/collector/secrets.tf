# No secret lives in code, in the image or in Terraform state:
# - the Slack webhook URL: SSM SecureString `error_notification_slack_webhook_url` (var.webhook_parameter_name),
#   created and set out of band by an operator (`aws ssm put-parameter`, infra/README.md). Terraform neither
#   manages it nor reads it (no resource, no data source: either would copy the decrypted URL into the state);
#   only the daemon's role may read it, at run time (iam.tf);
# - the Postgres password is generated and rotated by RDS in Secrets Manager (manage_master_user_password) and
#   injected into the containers by ECS (the state holds the secret's ARN, not its value);
# - Azure credentials stay in the legacy AzureAuth table, read by the runs at run time.

locals {
  instance_parameter_name = "/${local.name}/dagster.yaml"
  instance_yaml           = templatefile("${path.module}/dagster.yaml.tftpl", {
    db_host                 = aws_db_instance.dagster.address
    db_port                 = aws_db_instance.dagster.port
    db_name                 = aws_db_instance.dagster.db_name
    db_username             = aws_db_instance.dagster.username
    run_task_definition_arn = aws_ecs_task_definition.run.arn
    cluster_arn             = aws_ecs_cluster.this.arn
    capacity_provider       = var.use_fargate_spot ? "FARGATE_SPOT" : "FARGATE"
    subnet_ids              = var.subnet_ids
    security_group_id       = aws_security_group.tasks.id
  })
}

# The instance's dagster.yaml (no secret inside: the password is read from DAGSTER_PG_PASSWORD). ECS injects it
# into the webserver and daemon as DAGSTER_INSTANCE_YAML, which their entry point writes to $DAGSTER_HOME; its
# hash in their environment (ecs.tf) redeploys them whenever it changes (e.g. a new run task definition).
resource "aws_ssm_parameter" "dagster_instance" {
  #checkov:skip=CKV2_AWS_34:not a secret: hostnames, ARNs and settings only
  name        = local.instance_parameter_name
  description = "Dagster instance configuration of the SpotLake Azure collector (${var.environment})"
  type        = "String"
  value       = local.instance_yaml
}
