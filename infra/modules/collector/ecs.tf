# Dagster on ECS Fargate: the webserver (read-only UI) and the daemon are services (both load workspace.yaml from the
# image); every run is a task of the `run` task definition launched by the daemon's EcsRunLauncher; the `admin` task
# definition is a full (read-write) UI an operator starts on demand and reaches only through SSM port forwarding.
#
# Every container starts through the image's entry point (docker/entrypoint.sh): it refuses to start unless
# SPOTLAKE_ENV is prod or test and writes DAGSTER_INSTANCE_YAML (injected below) to $DAGSTER_HOME/dagster.yaml.

locals {
  name           = "spotlake-azure-${var.environment}"
  log_group_name = "/ecs/${local.name}"

  # The environment the code reads (resources/settings.py); no secret among them.
  collector_environment = [
    { name = "SPOTLAKE_ENV", value = var.environment },
    { name = "SPOTLAKE_WRITE_BUCKET", value = var.write_bucket },
    { name = "SPOTLAKE_READ_BUCKET", value = var.read_bucket },
    { name = "SPOTLAKE_DYNAMODB_TABLE", value = var.dynamodb_table },
    { name = "SPOTLAKE_AWS_REGION", value = var.aws_region },
    { name = "SPOTLAKE_AZURE_AUTH_TABLE", value = var.azure_auth_table },
    { name = "AWS_REGION", value = var.aws_region },
  ]
  # Webserver and daemon: the same, plus the hash of dagster.yaml so that a new config is a new task revision.
  service_environment = concat(local.collector_environment, [
    { name = "DAGSTER_INSTANCE_YAML_SHA256", value = sha256(local.instance_yaml) },
  ])
  postgres_secret = {
    name      = "DAGSTER_PG_PASSWORD"
    valueFrom = "${aws_db_instance.dagster.master_user_secret[0].secret_arn}:password::"
  }
  instance_secret = {
    name      = "DAGSTER_INSTANCE_YAML"
    valueFrom = aws_ssm_parameter.dagster_instance.arn
  }

  # Health checks run inside the container (the slim image has no curl): docker/healthcheck.py asks the webserver's
  # /server_info, or `dagster-daemon liveness-check` (recent heartbeats of every daemon in Postgres).
  webserver_health_check = {
    command     = ["CMD", "python", "/opt/spotlake/docker/healthcheck.py", "webserver", "3000"]
    interval    = 30
    timeout     = 10
    retries     = 3
    startPeriod = 120
  }
  daemon_health_check = {
    command     = ["CMD", "python", "/opt/spotlake/docker/healthcheck.py", "daemon"]
    interval    = 60
    timeout     = 45
    retries     = 3
    startPeriod = 180
  }

  # The production UI is read-only: no launching runs or backfills, no schedule or sensor toggles, no termination.
  # Those are done from the admin task (see infra/README.md "Operating production").
  webserver_command = ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "workspace.yaml", "--read-only"]
  # The admin UI listens on the task's loopback only (reached through SSM port forwarding, never a security group)
  # and stops by itself after admin_session_hours.
  admin_command = [
    "timeout", "${var.admin_session_hours}h",
    "dagster-webserver", "-h", "127.0.0.1", "-p", "3000", "-w", "workspace.yaml",
  ]

  fargate_task = {
    requires_compatibilities = ["FARGATE"]
    network_mode             = "awsvpc"
  }
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_158:the AWS managed encryption of CloudWatch Logs suffices; logs hold no secrets
  #checkov:skip=CKV_AWS_338:retention is a variable (default 90 days); a year is not needed for run logs
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
}

resource "aws_ecs_cluster" "this" {
  name = local.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]
}

resource "aws_security_group" "tasks" {
  name        = "${local.name}-tasks"
  description = "Dagster webserver, daemon and run tasks of ${local.name}"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "tasks_https" {
  #checkov:skip=CKV_AWS_382:Azure's APIs and AWS endpoints have no fixed address range; HTTPS only
  security_group_id = aws_security_group.tasks.id
  description       = "HTTPS to Azure APIs, AWS APIs and ECR"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "tasks_postgres" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "Dagster instance storage"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.db.id
}

resource "aws_vpc_security_group_ingress_rule" "ui" {
  for_each          = toset(var.ui_ingress_cidrs)
  security_group_id = aws_security_group.tasks.id
  description       = "Dagster UI from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 3000
  to_port           = 3000
  cidr_ipv4         = each.value
}

resource "aws_ecs_task_definition" "run" {
  family                   = "${local.name}-run"
  requires_compatibilities = local.fargate_task.requires_compatibilities
  network_mode             = local.fargate_task.network_mode
  cpu                      = var.run_cpu
  memory                   = var.run_memory
  task_role_arn            = aws_iam_role.run.arn
  execution_role_arn       = aws_iam_role.execution.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
  # The EcsRunLauncher overrides the command with `dagster api execute_run ...` (through the entry point). A run is a
  # batch process with no port: ECS watches its exit code, the daemon's run monitoring its progress.
  container_definitions = jsonencode([
    {
      name        = "run"
      image       = var.image_uri
      essential   = true
      environment = local.collector_environment
      secrets     = [local.postgres_secret]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = local.log_group_name
          awslogs-region        = var.aws_region
          awslogs-stream-prefix = "run"
        }
      }
    },
  ])
}

resource "aws_ecs_task_definition" "webserver" {
  family                   = "${local.name}-webserver"
  requires_compatibilities = local.fargate_task.requires_compatibilities
  network_mode             = local.fargate_task.network_mode
  cpu                      = 512
  memory                   = 2048
  task_role_arn            = aws_iam_role.webserver.arn
  execution_role_arn       = aws_iam_role.execution.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
  container_definitions = jsonencode([
    {
      name         = "webserver"
      image        = var.image_uri
      essential    = true
      command      = local.webserver_command
      portMappings = [{ containerPort = 3000, protocol = "tcp" }]
      environment  = local.service_environment
      secrets      = [local.postgres_secret, local.instance_secret]
      healthCheck  = local.webserver_health_check
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = local.log_group_name
          awslogs-region        = var.aws_region
          awslogs-stream-prefix = "webserver"
        }
      }
    },
  ])
}

resource "aws_ecs_task_definition" "daemon" {
  family                   = "${local.name}-daemon"
  requires_compatibilities = local.fargate_task.requires_compatibilities
  network_mode             = local.fargate_task.network_mode
  cpu                      = 512
  memory                   = 2048
  task_role_arn            = aws_iam_role.daemon.arn
  execution_role_arn       = aws_iam_role.execution.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
  container_definitions = jsonencode([
    {
      name        = "daemon"
      image       = var.image_uri
      essential   = true
      command     = ["dagster-daemon", "run", "-w", "workspace.yaml"]
      environment = local.service_environment
      secrets     = [local.postgres_secret, local.instance_secret]
      healthCheck = local.daemon_health_check
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = local.log_group_name
          awslogs-region        = var.aws_region
          awslogs-stream-prefix = "daemon"
        }
      }
    },
  ])
}

# The admin UI: the same webserver without --read-only, for launching runs and backfills, toggling schedules and
# terminating runs. Not a service: an operator starts it with `aws ecs run-task --enable-execute-command`, forwards
# its port with `aws ssm start-session` (IAM decides who may: the `operator` policy in iam.tf) and it stops itself.
resource "aws_ecs_task_definition" "admin" {
  family                   = "${local.name}-admin"
  requires_compatibilities = local.fargate_task.requires_compatibilities
  network_mode             = local.fargate_task.network_mode
  cpu                      = 512
  memory                   = 2048
  task_role_arn            = aws_iam_role.admin.arn
  execution_role_arn       = aws_iam_role.execution.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
  container_definitions = jsonencode([
    {
      name        = "admin"
      image       = var.image_uri
      essential   = true
      command     = local.admin_command
      environment = local.service_environment
      secrets     = [local.postgres_secret, local.instance_secret]
      healthCheck = local.webserver_health_check
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = local.log_group_name
          awslogs-region        = var.aws_region
          awslogs-stream-prefix = "admin"
        }
      }
    },
  ])
}

resource "aws_ecs_service" "webserver" {
  name            = "webserver"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.webserver.arn
  desired_count   = 1
  capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }
  depends_on = [aws_ecs_cluster_capacity_providers.this, aws_iam_role_policy.execution]
}

# Exactly one daemon at any time, also during deployments (two daemons would tick schedules twice).
resource "aws_ecs_service" "daemon" {
  name                               = "daemon"
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.daemon.arn
  desired_count                      = 1
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100
  capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }
  depends_on = [aws_ecs_cluster_capacity_providers.this, aws_iam_role_policy.execution]
}
