# Postgres for the Dagster instance (runs, event logs, schedules): small, private, encrypted, backed up.

resource "aws_db_subnet_group" "dagster" {
  name       = "${local.name}-dagster"
  subnet_ids = var.subnet_ids
}

resource "aws_security_group" "db" {
  name        = "${local.name}-db"
  description = "Dagster Postgres of ${local.name}: reachable from the collector's tasks only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "db_from_tasks" {
  security_group_id            = aws_security_group.db.id
  description                  = "Postgres from the webserver, daemon and run tasks"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_db_instance" "dagster" {
  #checkov:skip=CKV_AWS_157:single-AZ is enough for Dagster's bookkeeping; backups cover loss
  #checkov:skip=CKV_AWS_118:standard RDS metrics and Performance Insights (enabled below) cover this bookkeeping database
  #checkov:skip=CKV2_AWS_30:statement logs would only repeat Dagster's own run/event queries; the postgresql log is exported
  #checkov:skip=CKV_AWS_354:Performance Insights data of Dagster's bookkeeping needs no customer-managed key
  identifier                          = "${local.name}-dagster"
  engine                              = "postgres"
  engine_version                      = "16"
  instance_class                      = var.db_instance_class
  allocated_storage                   = 20
  max_allocated_storage               = 100
  storage_encrypted                   = true
  db_name                             = "dagster"
  username                            = "dagster"
  manage_master_user_password         = true
  iam_database_authentication_enabled = true
  db_subnet_group_name                = aws_db_subnet_group.dagster.name
  vpc_security_group_ids              = [aws_security_group.db.id]
  publicly_accessible                 = false
  backup_retention_period             = 7
  copy_tags_to_snapshot               = true
  auto_minor_version_upgrade          = true
  deletion_protection                 = var.environment == "prod"
  skip_final_snapshot                 = var.environment != "prod"
  final_snapshot_identifier           = "${local.name}-dagster-final"
  performance_insights_enabled        = true
  enabled_cloudwatch_logs_exports     = ["postgresql"]
}
