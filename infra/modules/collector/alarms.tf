# An alarm that does not need Dagster (docs/operations.md "Who is told").
#
# Every run that commits partitions puts the CloudWatch metric SpotLake/Azure PartitionsCommitted (dimension
# Environment) after its last commit (resources/heartbeat.py). If the daemon, its ECS service, the code location or
# Postgres stops, the schedule and the alert sensors stop with it, and nothing is committed: the metric's sum stays
# below one and, missing data counting as breaching, the alarm fires after heartbeat_alarm_periods periods of ten
# minutes. It notifies the failure channel (the webhook of the Dagster alert sensors) on AWS's own path: the alarm
# publishes to an SNS topic, a small Lambda function subscribed to it reads the webhook URL from SSM when a message
# comes (the URL never enters Terraform state nor the function's environment) and posts the alarm
# (resources/alarm_webhook.py). It notifies again when the alarm is resolved.

variable "heartbeat_alarm_periods" {
  description = "Ten-minute periods without any committed partition before the heartbeat alarm fires (3: 30 minutes)."
  type        = number
  default     = 3
  validation {
    condition     = var.heartbeat_alarm_periods >= 2 && var.heartbeat_alarm_periods <= 36
    error_message = "heartbeat_alarm_periods must be between 2 (one lost partition is recovered, not an alarm) and 36."
  }
}

variable "heartbeat_alarm_notifies" {
  description = "Whether the heartbeat alarm notifies the failure channel: true where the schedule runs unattended (prod); an environment that collects on demand only (test) would always be in alarm."
  type        = bool
  default     = true
}

locals {
  heartbeat_namespace       = "SpotLake/Azure"
  heartbeat_metric          = "PartitionsCommitted"
  alarm_webhook_name        = "${local.name}-alarm-webhook"
  alarm_webhook_log_group   = "/aws/lambda/${local.alarm_webhook_name}"
  alarm_webhook_log_streams = "arn:aws:logs:${var.aws_region}:${local.account_id}:log-group:${local.alarm_webhook_log_group}:log-stream:*"

  # The messenger reads the webhook parameter (decrypted with the account's SSM key) and writes its own logs.
  alarm_webhook_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ReadSlackWebhook"
        Effect   = "Allow"
        Action   = ["ssm:GetParameter"]
        Resource = [local.webhook_parameter_arn]
      },
      {
        # When the heartbeat alarm fires, the history's TTL goes off (resources/alarm_webhook.py): with the collector
        # stopped, its guard cannot keep an unarchived month's items from expiring.
        Sid      = "SwitchOffHistoryExpiry"
        Effect   = "Allow"
        Action   = ["dynamodb:DescribeTimeToLive", "dynamodb:UpdateTimeToLive"]
        Resource = [local.table_arn]
      },
      {
        Sid      = "WriteOwnLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = [local.alarm_webhook_log_streams]
      },
    ]
  }
}

resource "aws_sns_topic" "alarms" {
  #checkov:skip=CKV_AWS_26:CloudWatch cannot publish to a topic encrypted with the AWS managed key, and the alarm messages hold no secret (names and states)
  name = "${local.name}-alarms"
}

resource "aws_cloudwatch_metric_alarm" "no_commit" {
  alarm_name        = "${local.name}-no-partition-committed" # the messenger's TTL_GUARD_ALARM
  alarm_description = "No partition of the SpotLake Azure collector (${var.environment}) committed for ${var.heartbeat_alarm_periods * 10} minutes: the schedule, the daemon, its ECS service, the code location or Postgres has stopped, or every run fails. Dagster's own alerts may be silent too (docs/operations.md \"Who is told\")."
  namespace         = local.heartbeat_namespace
  metric_name       = local.heartbeat_metric
  dimensions        = { Environment = var.environment }
  statistic         = "Sum"
  period            = 600
  # every period of the window must be empty: one lost partition (recovered by the next run) is no alarm
  evaluation_periods  = var.heartbeat_alarm_periods
  datapoints_to_alarm = var.heartbeat_alarm_periods
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  # no datapoint at all is exactly what a stopped collector looks like
  treat_missing_data = "breaching"
  actions_enabled    = var.heartbeat_alarm_notifies
  alarm_actions      = [aws_sns_topic.alarms.arn]
  ok_actions         = [aws_sns_topic.alarms.arn]
}

data "archive_file" "alarm_webhook" {
  type             = "zip"
  source_file      = "${path.module}/../../../resources/alarm_webhook.py"
  output_path      = "${path.module}/../../../build/spotlake-alarm-webhook.zip"
  output_file_mode = "0644"
}

resource "aws_iam_role" "alarm_webhook" {
  name               = local.alarm_webhook_name
  assume_role_policy = jsonencode(local.lambda_trust)
}

resource "aws_iam_role_policy" "alarm_webhook" {
  name   = "post-alarms"
  role   = aws_iam_role.alarm_webhook.id
  policy = jsonencode(local.alarm_webhook_policy)
}

resource "aws_cloudwatch_log_group" "alarm_webhook" {
  #checkov:skip=CKV_AWS_158:the AWS managed encryption of CloudWatch Logs suffices; the logs hold alarm texts only
  #checkov:skip=CKV_AWS_338:retention is a variable (default 90 days)
  name              = local.alarm_webhook_log_group
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "alarm_webhook" {
  #checkov:skip=CKV_AWS_116:invoked asynchronously by SNS, which Lambda retries twice; a lost alarm message is re-sent at the next state change
  #checkov:skip=CKV_AWS_117:it calls only SSM and the webhook over the internet; a VPC would add a NAT and nothing else
  #checkov:skip=CKV_AWS_173:its environment holds a parameter name, no secret (the AWS managed key encrypts it)
  #checkov:skip=CKV_AWS_272:the package is one file of this repository; no signing profile exists
  #checkov:skip=CKV_AWS_50:X-Ray would need xray:PutTraceSegments on "*"; one post per alarm needs no tracing
  function_name                  = local.alarm_webhook_name
  description                    = "Posts the SpotLake Azure collector's CloudWatch alarms to the failure webhook (resources/alarm_webhook.py)"
  role                           = aws_iam_role.alarm_webhook.arn
  runtime                        = "python3.12"
  handler                        = "alarm_webhook.handler"
  filename                       = data.archive_file.alarm_webhook.output_path
  source_code_hash               = data.archive_file.alarm_webhook.output_base64sha256
  architectures                  = ["arm64"]
  memory_size                    = 128
  timeout                        = 60
  reserved_concurrent_executions = 2

  environment {
    variables = {
      # the parameter's name; its value (the URL) is read at run time
      WEBHOOK_PARAMETER = var.webhook_parameter_name
      # the heartbeat alarm switches the history's TTL off (docs/design.md "Hot and cold")
      TTL_GUARD_TABLE = var.dynamodb_table
      TTL_GUARD_ALARM = "${local.name}-no-partition-committed"
    }
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.alarm_webhook.name
  }

  depends_on = [aws_iam_role_policy.alarm_webhook]
}

resource "aws_lambda_permission" "alarm_webhook" {
  statement_id  = "AllowAlarmTopic"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.alarm_webhook.function_name
  principal     = "sns.amazonaws.com"
  source_arn    = aws_sns_topic.alarms.arn
}

resource "aws_sns_topic_subscription" "alarm_webhook" {
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "lambda"
  endpoint  = aws_lambda_function.alarm_webhook.arn
}

output "alarm_topic_arn" {
  description = "SNS topic of the collector's CloudWatch alarms (subscribe an e-mail address to it for a second channel)."
  value       = aws_sns_topic.alarms.arn
}
