# The SpotLake web site's history query (resources/history_api.py): a Lambda function behind an API Gateway HTTP API.
#
# The site sends GET ?TableName=azure&InstanceType=...&Region=...&Start=YYYY-MM-DD&End=YYYY-MM-DD and reads
# {"Status": 200, "Data": [...]} (docs/web-site.md). The function only reads the history table (Query, GetItem).
#
# Package: the zip of exactly the handler's modules, built by `make query-api-zip` (resources/history_api_package.py)
# before `terraform plan`; the Lambda Python runtime provides boto3. The zip is deterministic, so an unchanged
# handler is not redeployed.
#
# Why an HTTP API and not a function URL: an HTTP API throttles requests (a public, unauthenticated endpoint whose
# every request may send ~160 DynamoDB Queries), and it needs only the lambda:InvokeFunction permission below.
# Function URLs created since October 2025 also need an InvokeFunction statement conditioned on
# lambda:InvokedViaFunctionUrl, which Terraform's AWS provider expresses only from 6.29 (this module allows 5.70).
# The event (payload 2.0) is the same for both, and resources/history_api.py handles function URL events too.
#
# CORS is answered by the handler (allowed origins from var.query_api_allowed_origins), not by the API: with an API
# CORS configuration, API Gateway drops the function's CORS headers and answers preflights itself, so the tested
# behaviour (tests/test_query_api.py) would not be the deployed one. The $default route sends OPTIONS to the handler.

variable "query_api_allowed_origins" {
  description = "Origins whose browsers may read the query API's answers (CORS); the SpotLake site's by default."
  type        = list(string)
  default     = ["https://spotlake.ddps.cloud"]
  validation {
    condition     = alltrue([for origin in var.query_api_allowed_origins : can(regex("^https?://[^/]+$", origin))])
    error_message = "query_api_allowed_origins are origins such as https://spotlake.ddps.cloud (scheme and host, no path)."
  }
}

variable "query_api_timeout_seconds" {
  description = "How long a query may run before it answers Status 504; the function gets 8 s more (HTTP APIs wait 30 s at most)."
  type        = number
  default     = 20
  validation {
    condition     = var.query_api_timeout_seconds >= 5 && var.query_api_timeout_seconds <= 20
    error_message = "query_api_timeout_seconds must be between 5 and 20 (the HTTP API integration waits at most 30 s)."
  }
}

variable "query_api_concurrency" {
  description = "Reserved concurrency of the query function: at most this many queries at once (each uses up to 10 DynamoDB connections)."
  type        = number
  default     = 10
}

variable "query_api_rate_limit" {
  description = "Requests per second the HTTP API lets through (steady state); more are answered 429 by API Gateway."
  type        = number
  default     = 5
}

variable "query_api_burst_limit" {
  description = "Requests the HTTP API lets through in a burst."
  type        = number
  default     = 20
}

variable "query_api_package" {
  description = "Path of the Lambda zip; null: build/spotlake-query-api.zip of this repository (make query-api-zip)."
  type        = string
  default     = null
}

locals {
  query_api_name            = "${local.name}-query-api"
  query_api_log_group_name  = "/aws/lambda/${local.query_api_name}"
  query_api_log_streams_arn = "arn:aws:logs:${var.aws_region}:${local.account_id}:log-group:${local.query_api_log_group_name}:log-stream:*"
  query_api_zip             = coalesce(var.query_api_package, "${path.module}/../../../build/spotlake-query-api.zip")

  lambda_trust = {
    Version = "2012-10-17"
    Statement = [
      {
        Effect    = "Allow"
        Principal = { Service = "lambda.amazonaws.com" }
        Action    = "sts:AssumeRole"
        Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
      },
    ]
  }

  # Least privilege: read the history table with the two calls the query sends (never Scan), write its own logs.
  query_api_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ReadHistory"
        Effect   = "Allow"
        Action   = ["dynamodb:Query", "dynamodb:GetItem"]
        Resource = [local.table_arn]
      },
      {
        # The log group is created below, so the function needs no logs:CreateLogGroup.
        Sid      = "WriteOwnLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = [local.query_api_log_streams_arn]
      },
    ]
  }
}

resource "aws_iam_role" "query_api" {
  name               = local.query_api_name
  assume_role_policy = jsonencode(local.lambda_trust)
}

resource "aws_iam_role_policy" "query_api" {
  name   = "read-history"
  role   = aws_iam_role.query_api.id
  policy = jsonencode(local.query_api_policy)
}

resource "aws_cloudwatch_log_group" "query_api" {
  #checkov:skip=CKV_AWS_158:the AWS managed encryption of CloudWatch Logs suffices; the logs hold query parameters only
  #checkov:skip=CKV_AWS_338:retention is a variable (default 90 days); a year is not needed for query logs
  name              = local.query_api_log_group_name
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "query_api" {
  #checkov:skip=CKV_AWS_116:invoked synchronously by API Gateway only: a dead-letter queue never receives anything
  #checkov:skip=CKV_AWS_117:it calls only DynamoDB's public endpoint; a VPC would add a NAT or endpoint and nothing else
  #checkov:skip=CKV_AWS_173:its environment holds names and numbers, no secret (the AWS managed key encrypts it)
  #checkov:skip=CKV_AWS_272:the package is built from this repository by make query-api-zip; no signing profile exists
  #checkov:skip=CKV_AWS_50:X-Ray would need xray:PutTraceSegments on "*"; the JSON logs time every query
  function_name                  = local.query_api_name
  description                    = "SpotLake web site's Azure history query (resources/history_api.py)"
  role                           = aws_iam_role.query_api.arn
  runtime                        = "python3.12"
  handler                        = "resources.history_api.lambda_handler"
  filename                       = local.query_api_zip
  source_code_hash               = fileexists(local.query_api_zip) ? filebase64sha256(local.query_api_zip) : null
  architectures                  = ["arm64"]
  memory_size                    = 512 # CPU scales with memory: 20,000 records to JSON and gzip
  timeout                        = var.query_api_timeout_seconds + 8
  reserved_concurrent_executions = var.query_api_concurrency

  environment {
    variables = {
      SPOTLAKE_ENV                       = var.environment
      SPOTLAKE_DYNAMODB_TABLE            = var.dynamodb_table
      SPOTLAKE_AWS_REGION                = var.aws_region
      SPOTLAKE_QUERY_API_ALLOWED_ORIGINS = join(",", var.query_api_allowed_origins)
      SPOTLAKE_QUERY_API_TIMEOUT_SECONDS = tostring(var.query_api_timeout_seconds)
    }
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.query_api.name
    application_log_level = "INFO"
    system_log_level      = "WARN"
  }

  lifecycle {
    precondition {
      condition     = fileexists(local.query_api_zip)
      error_message = "The query API package is missing: run `make query-api-zip` at the repository root first."
    }
  }

  depends_on = [aws_iam_role_policy.query_api]
}

resource "aws_apigatewayv2_api" "query_api" {
  name          = local.query_api_name
  description   = "SpotLake web site's Azure history query"
  protocol_type = "HTTP"
}

resource "aws_apigatewayv2_integration" "query_api" {
  api_id                 = aws_apigatewayv2_api.query_api.id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_function.query_api.invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = 30000
}

resource "aws_apigatewayv2_route" "query_api" {
  #checkov:skip=CKV_AWS_309:the public web site calls it anonymously; the data it serves is public
  api_id             = aws_apigatewayv2_api.query_api.id
  route_key          = "$default" # every method and path (the site calls /query-api/ through its CDN)
  target             = "integrations/${aws_apigatewayv2_integration.query_api.id}"
  authorization_type = "NONE"
}

resource "aws_cloudwatch_log_group" "query_api_access" {
  #checkov:skip=CKV_AWS_158:the AWS managed encryption of CloudWatch Logs suffices; access logs hold no secret
  #checkov:skip=CKV_AWS_338:retention is a variable (default 90 days); a year is not needed for access logs
  name              = "/aws/apigateway/${local.query_api_name}"
  retention_in_days = var.log_retention_days
}

resource "aws_apigatewayv2_stage" "query_api" {
  api_id      = aws_apigatewayv2_api.query_api.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit  = var.query_api_rate_limit
    throttling_burst_limit = var.query_api_burst_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.query_api_access.arn
    format = jsonencode({
      requestId         = "$context.requestId"
      sourceIp          = "$context.identity.sourceIp"
      requestTime       = "$context.requestTime"
      httpMethod        = "$context.httpMethod"
      path              = "$context.path"
      status            = "$context.status"
      responseLength    = "$context.responseLength"
      integrationStatus = "$context.integrationStatus"
      integrationError  = "$context.integrationErrorMessage"
      latencyMs         = "$context.responseLatency"
    })
  }
}

resource "aws_lambda_permission" "query_api" {
  statement_id  = "AllowHttpApiInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.query_api.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.query_api.execution_arn}/*/*"
}

output "query_api_url" {
  description = "The history query endpoint for the web site (its query form's `url`; or a CDN path in front of it)."
  value       = aws_apigatewayv2_stage.query_api.invoke_url
}

output "query_api_function" {
  description = "Name of the query API's Lambda function."
  value       = aws_lambda_function.query_api.function_name
}
