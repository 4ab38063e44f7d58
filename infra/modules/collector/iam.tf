# Five roles, each with only what its task calls, and one policy for the humans who operate production (the policies
# are literal structures so that tests/test_infra.py can evaluate them per environment):
#   run        the Dagster runs (the collector itself): Azure's keys in the buckets, its table, AzureAuth read only
#   daemon     schedules, sensors (the Slack alert) and the EcsRunLauncher
#   webserver  the read-only UI: sees run tasks and their logs
#   admin      the on-demand admin UI: sees and stops run tasks, and accepts the operator's SSM session
#   execution  ECS itself: pulls the image, writes logs, injects the Postgres password and dagster.yaml
#   operator   (a managed policy, attached by the account's admin) starts the admin UI and forwards its port

locals {
  webhook_parameter_arn  = "arn:aws:ssm:${var.aws_region}:${local.account_id}:parameter/${var.webhook_parameter_name}"
  instance_parameter_arn = "arn:aws:ssm:${var.aws_region}:${local.account_id}:parameter${local.instance_parameter_name}"
  run_task_family_arn    = "arn:aws:ecs:${var.aws_region}:${local.account_id}:task-definition/${local.name}-run:*"
  admin_task_family_arn  = "arn:aws:ecs:${var.aws_region}:${local.account_id}:task-definition/${local.name}-admin:*"
  cluster_arn            = "arn:aws:ecs:${var.aws_region}:${local.account_id}:cluster/${local.name}"
  cluster_task_arns      = "arn:aws:ecs:${var.aws_region}:${local.account_id}:task/${local.name}/*"
  log_group_arn          = "arn:aws:logs:${var.aws_region}:${local.account_id}:log-group:${local.log_group_name}"
  ecr_repository_arn     = "arn:aws:ecr:${var.aws_region}:${local.account_id}:repository/${local.ecr_repository}"
  ecr_repository         = regex("^[^/]+/([^:@]+)", var.image_uri)[0]
  # The AWS-owned SSM document (no account id in its ARN) of `aws ssm start-session` port forwarding.
  port_forwarding_document_arn = "arn:aws:ssm:${var.aws_region}::document/AWS-StartPortForwardingSession"

  # The collector: every output goes to the write bucket, inputs fall back to the read bucket (read only). Both
  # buckets are shared with the other SpotLake collectors, so objects are granted on Azure's keys only
  # (azure_object_patterns in storage.tf): an Azure run can neither overwrite nor read another collector's objects.
  run_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "WriteAzureObjects"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject"]
        Resource = [for pattern in local.azure_object_patterns : "${local.write_bucket_arn}/${pattern}"]
      },
      {
        # PutObject with ACL public-read also needs PutObjectAcl: granted on the legacy public outputs only.
        Sid      = "PublishPublicOutputs"
        Effect   = "Allow"
        Action   = ["s3:PutObjectAcl"]
        Resource = [for key in local.public_object_keys : "${local.write_bucket_arn}/${key}"]
      },
      {
        # Listing only Azure's keys (the buckets are shared). With no unconditional ListBucket, S3 answers 403
        # instead of 404 for a missing key: resources/s3.py then lists that key's own prefix (allowed here) and
        # reads "not listed" as absent, so the code's "not there yet" reads (state, markers, first partition) work.
        Sid       = "ListWriteBucket"
        Effect    = "Allow"
        Action    = ["s3:ListBucket"]
        Resource  = [local.write_bucket_arn]
        Condition = { StringLike = { "s3:prefix" = local.azure_object_patterns } }
      },
      {
        Sid      = "ReadAzureObjectsOfReadBucket"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = [for pattern in local.azure_object_patterns : "${local.read_bucket_arn}/${pattern}"]
      },
      {
        Sid       = "ListReadBucket"
        Effect    = "Allow"
        Action    = ["s3:ListBucket"]
        Resource  = [local.read_bucket_arn]
        Condition = { StringLike = { "s3:prefix" = local.azure_object_patterns } }
      },
      {
        Sid    = "HistoryTable"
        Effect = "Allow"
        Action = [
          "dynamodb:BatchWriteItem",
          "dynamodb:PutItem",
          "dynamodb:UpdateItem",
          "dynamodb:GetItem",
          "dynamodb:Query",
          "dynamodb:DescribeTable",
        ]
        Resource = [local.table_arn]
      },
      {
        # The archive's guard (archive.tf) reads the table's TTL state and switches it; the attribute is expires_at.
        Sid      = "SwitchHistoryTtl"
        Effect   = "Allow"
        Action   = ["dynamodb:DescribeTimeToLive", "dynamodb:UpdateTimeToLive"]
        Resource = [local.table_arn]
      },
      {
        Sid      = "ReadAzureCredentials"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem"]
        Resource = [local.auth_table_arn]
      },
      {
        # The heartbeat the alarm watches (resources/heartbeat.py, alarms.tf). PutMetricData has no resource-level
        # permissions (AWS requires "*"): the condition keeps it to the collector's namespace.
        Sid       = "PutHeartbeat"
        Effect    = "Allow"
        Action    = ["cloudwatch:PutMetricData"]
        Resource  = ["*"]
        Condition = { StringEquals = { "cloudwatch:namespace" = local.heartbeat_namespace } }
      },
    ]
  }

  # The run-failure sensor runs in the daemon: only it reads the webhook URL.
  webhook_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ReadSlackWebhook"
        Effect   = "Allow"
        Action   = ["ssm:GetParameter"]
        Resource = [local.webhook_parameter_arn]
      },
    ]
  }

  # The read-only UI: sees run tasks and reads their logs; it cannot stop them (--read-only has no terminate).
  read_runs_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "DescribeRunTasks"
        Effect   = "Allow"
        Action   = ["ecs:DescribeTasks"]
        Resource = [local.cluster_task_arns]
      },
      {
        # DescribeTaskDefinition has no resource-level permissions (AWS requires "*").
        Sid      = "ReadTaskDefinitions"
        Effect   = "Allow"
        Action   = ["ecs:DescribeTaskDefinition"]
        Resource = ["*"]
      },
      {
        Sid      = "ReadRunLogs"
        Effect   = "Allow"
        Action   = ["logs:GetLogEvents"]
        Resource = ["${local.log_group_arn}:log-stream:*"]
      },
    ]
  }

  # Watching and stopping run tasks: the admin UI (terminate) and the daemon (run monitoring).
  observe_runs_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "WatchRunTasks"
        Effect   = "Allow"
        Action   = ["ecs:DescribeTasks", "ecs:StopTask"]
        Resource = [local.cluster_task_arns]
      },
      {
        # DescribeTaskDefinition has no resource-level permissions (AWS requires "*").
        Sid      = "ReadTaskDefinitions"
        Effect   = "Allow"
        Action   = ["ecs:DescribeTaskDefinition"]
        Resource = ["*"]
      },
      {
        Sid      = "ReadRunLogs"
        Effect   = "Allow"
        Action   = ["logs:GetLogEvents"]
        Resource = ["${local.log_group_arn}:log-stream:*"]
      },
    ]
  }

  # The EcsRunLauncher: start the run task definition in this cluster and hand it its two roles.
  launch_runs_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "RunTheRunTask"
        Effect    = "Allow"
        Action    = ["ecs:RunTask"]
        Resource  = [local.run_task_family_arn]
        Condition = { ArnEquals = { "ecs:cluster" = local.cluster_arn } }
      },
      {
        Sid       = "TagRunTasks"
        Effect    = "Allow"
        Action    = ["ecs:TagResource"]
        Resource  = [local.cluster_task_arns]
        Condition = { StringEquals = { "ecs:CreateAction" = "RunTask" } }
      },
      {
        Sid       = "PassRunRoles"
        Effect    = "Allow"
        Action    = ["iam:PassRole"]
        Resource  = [aws_iam_role.run.arn, aws_iam_role.execution.arn]
        Condition = { StringEquals = { "iam:PassedToService" = "ecs-tasks.amazonaws.com" } }
      },
    ]
  }

  # ECS Exec / SSM port forwarding into the admin task: the SSM agent in the task opens the session's channels.
  # These four actions have no resource-level permissions (AWS requires "*"); who may open a session is decided by
  # the caller's ecs:ExecuteCommand / ssm:StartSession (operator_policy), and only the admin task is started with
  # --enable-execute-command.
  session_channel_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "SessionManagerChannels"
        Effect   = "Allow"
        Action   = local.session_channel_actions
        Resource = ["*"]
      },
    ]
  }
  session_channel_actions = [
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
  ]

  # The humans who operate production: start the admin UI task, forward its port, stop it. Attach this managed
  # policy to the operators' role or group; nothing else in the account needs to change.
  operator_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "StartAdminTask"
        Effect    = "Allow"
        Action    = ["ecs:RunTask"]
        Resource  = [local.admin_task_family_arn]
        Condition = { ArnEquals = { "ecs:cluster" = local.cluster_arn } }
      },
      {
        Sid       = "PassAdminRoles"
        Effect    = "Allow"
        Action    = ["iam:PassRole"]
        Resource  = [aws_iam_role.admin.arn, aws_iam_role.execution.arn]
        Condition = { StringEquals = { "iam:PassedToService" = "ecs-tasks.amazonaws.com" } }
      },
      {
        # StopTask also lets an operator end a stuck run, as the admin UI's "terminate" does.
        Sid      = "WatchAndStopTasks"
        Effect   = "Allow"
        Action   = ["ecs:DescribeTasks", "ecs:StopTask"]
        Resource = [local.cluster_task_arns]
      },
      {
        # Only the admin container: the services and the runs are never started with execute-command anyway.
        Sid       = "ExecIntoAdminTask"
        Effect    = "Allow"
        Action    = ["ecs:ExecuteCommand"]
        Resource  = [local.cluster_task_arns]
        Condition = { StringEquals = { "ecs:container-name" = "admin" } }
      },
      {
        Sid      = "ForwardAdminPort"
        Effect   = "Allow"
        Action   = ["ssm:StartSession"]
        Resource = [local.cluster_task_arns, local.port_forwarding_document_arn]
      },
    ]
  }

  execution_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        # GetAuthorizationToken has no resource-level permissions (AWS requires "*").
        Sid      = "EcrLogin"
        Effect   = "Allow"
        Action   = ["ecr:GetAuthorizationToken"]
        Resource = ["*"]
      },
      {
        Sid      = "PullImage"
        Effect   = "Allow"
        Action   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
        Resource = [local.ecr_repository_arn]
      },
      {
        Sid      = "WriteLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = ["${local.log_group_arn}:log-stream:*"]
      },
      {
        Sid      = "InjectPostgresPassword"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = [aws_db_instance.dagster.master_user_secret[0].secret_arn]
      },
      {
        Sid      = "InjectInstanceConfig"
        Effect   = "Allow"
        Action   = ["ssm:GetParameters"]
        Resource = [local.instance_parameter_arn]
      },
    ]
  }

  ecs_tasks_trust = {
    Version = "2012-10-17"
    Statement = [
      {
        Effect    = "Allow"
        Principal = { Service = "ecs-tasks.amazonaws.com" }
        Action    = "sts:AssumeRole"
        Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
      },
    ]
  }
}

resource "aws_iam_role" "run" {
  name               = "${local.name}-run"
  description        = "Dagster runs of the SpotLake Azure collector (${var.environment})"
  assume_role_policy = jsonencode(local.ecs_tasks_trust)
}

resource "aws_iam_role" "daemon" {
  name               = "${local.name}-daemon"
  description        = "Dagster daemon of the SpotLake Azure collector (${var.environment})"
  assume_role_policy = jsonencode(local.ecs_tasks_trust)
}

resource "aws_iam_role" "webserver" {
  name               = "${local.name}-webserver"
  description        = "Dagster UI of the SpotLake Azure collector (${var.environment})"
  assume_role_policy = jsonencode(local.ecs_tasks_trust)
}

resource "aws_iam_role" "admin" {
  name               = "${local.name}-admin"
  description        = "On-demand admin UI of the SpotLake Azure collector (${var.environment})"
  assume_role_policy = jsonencode(local.ecs_tasks_trust)
}

resource "aws_iam_role" "execution" {
  name               = "${local.name}-execution"
  description        = "ECS task execution role of the SpotLake Azure collector (${var.environment})"
  assume_role_policy = jsonencode(local.ecs_tasks_trust)
}

resource "aws_iam_role_policy" "run_data" {
  name   = "collector-data"
  role   = aws_iam_role.run.id
  policy = jsonencode(local.run_policy)
}

resource "aws_iam_role_policy" "daemon_webhook" {
  name   = "slack-webhook"
  role   = aws_iam_role.daemon.id
  policy = jsonencode(local.webhook_policy)
}

resource "aws_iam_role_policy" "daemon_observe" {
  name   = "observe-runs"
  role   = aws_iam_role.daemon.id
  policy = jsonencode(local.observe_runs_policy)
}

resource "aws_iam_role_policy" "daemon_launch" {
  name   = "launch-runs"
  role   = aws_iam_role.daemon.id
  policy = jsonencode(local.launch_runs_policy)
}

resource "aws_iam_role_policy" "webserver_read" {
  name   = "read-runs"
  role   = aws_iam_role.webserver.id
  policy = jsonencode(local.read_runs_policy)
}

resource "aws_iam_role_policy" "admin_observe" {
  name   = "observe-runs"
  role   = aws_iam_role.admin.id
  policy = jsonencode(local.observe_runs_policy)
}

resource "aws_iam_role_policy" "admin_sessions" {
  name   = "session-channels"
  role   = aws_iam_role.admin.id
  policy = jsonencode(local.session_channel_policy)
}

resource "aws_iam_policy" "operator" {
  name        = "${local.name}-operator"
  description = "Operators of the SpotLake Azure collector (${var.environment}): start and reach the admin UI task"
  policy      = jsonencode(local.operator_policy)
}

resource "aws_iam_role_policy" "execution" {
  name   = "task-execution"
  role   = aws_iam_role.execution.id
  policy = jsonencode(local.execution_policy)
}
