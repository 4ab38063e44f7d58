# The SpotLake web site's history query (resources/query_api/handler.py): a Lambda function behind an API Gateway REST API
# whose stage has a cache and an AWS WAF web ACL.
#
# The site sends GET ?TableName=azure&InstanceType=...&Region=...&Start=YYYY-MM-DD&End=YYYY-MM-DD and reads
# {"Status": 200, "Data": [...]} (docs/web-site.md). The function only reads the history table (Query, GetItem) and,
# for months gone from the table, the archive's lookup files and verified-months index (archive.tf).
#
# Package: the zip of exactly the handler's modules, built by `make query-api-zip` (resources/query_api/package.py)
# before `terraform plan`; the Lambda Python runtime provides boto3. The zip is deterministic, so an unchanged
# handler is not redeployed.
#
# Why a REST API (and not an HTTP API, nor CloudFront in front of one): the endpoint is public and unauthenticated,
# and one request may send ~160 DynamoDB Queries, so each client needs a limit of its own at the edge, which is an
# AWS WAF rate-based rule. WAF does not attach to HTTP APIs (aws_apigatewayv2_api). It attaches to a REST API's stage
# directly, so no request reaches the function around it; a CloudFront distribution with WAF in front of an HTTP API
# would leave the API's own URL open (closing it needs a secret header shared through Terraform state) and needs a
# us-east-1 provider for the CloudFront-scoped web ACL. The REST stage also has a cache keyed on named parameters,
# so a repeated query is answered without the function. The site's own CloudFront distribution
# (d26bk4799jlxhe.cloudfront.net, not managed here) may still front this API: docs/web-site.md.
#
# Requests: the root and {proxy+} resources (the handler ignores the path) each have a GET method, cached by the
# site's seven parameters and Origin, and an ANY method for everything else (OPTIONS, the CORS preflight, and the
# refusals of other methods), cached apart (its own cache namespace, keyed by Origin and the preflight's
# Access-Control-Request-Method), so that a GET's cache entry can only ever hold a GET's answer. Both are
# AWS_PROXY integrations (payload 1.0; resources/query_api/handler.py parse_event). The web ACL refuses, before the cache,
# any query string with another parameter or a repeated one: such a request would share the cache entry of the
# same request without it, and the function's refusal would then be served to every visitor asking that query.
#
# CORS is answered by the handler (allowed origins from var.query_api_allowed_origins), not by API Gateway, so the
# tested behaviour (tests/test_query_api.py) is the deployed one. Compression: API Gateway gzips answers of 1 KB
# or more for clients that accept it (minimum_compression_size); the function sends plain JSON to a REST API.

variable "query_api_allowed_origins" {
  description = "Origins whose browsers may read the query API's answers (CORS); the SpotLake site's by default."
  type        = list(string)
  default     = ["https://spotlake.ddps.cloud"]
  validation {
    condition     = length(var.query_api_allowed_origins) >= 1 && alltrue([for origin in var.query_api_allowed_origins : can(regex("^https?://[^/]+$", origin))])
    error_message = "query_api_allowed_origins are one or more origins such as https://spotlake.ddps.cloud (scheme and host, no path); the first one reads the errors WAF and API Gateway answer."
  }
}

variable "query_api_timeout_seconds" {
  description = "How long a query may run before it answers Status 504; the function gets 8 s more (a REST API waits 29 s at most)."
  type        = number
  default     = 20
  validation {
    condition     = var.query_api_timeout_seconds >= 5 && var.query_api_timeout_seconds <= 20
    error_message = "query_api_timeout_seconds must be between 5 and 20 (the function's timeout, 8 s more, stays under the REST integration's 29 s)."
  }
}

# Sizing: the arithmetic behind these four defaults is in docs/security.md, "Sizing the query API".
variable "query_api_concurrency" {
  description = "Reserved concurrency of the query function: at most this many queries at once (each uses up to 10 DynamoDB connections)."
  type        = number
  default     = 10
  validation {
    condition     = var.query_api_concurrency >= 1 && floor(var.query_api_concurrency) == var.query_api_concurrency
    error_message = "query_api_concurrency must be a whole number of at least 1."
  }
}

variable "query_api_rate_limit" {
  description = "Requests per second the stage lets through, all clients together (steady state); more are answered 429."
  type        = number
  default     = 5
  validation {
    condition     = var.query_api_rate_limit > 0
    error_message = "query_api_rate_limit must be above 0."
  }
}

variable "query_api_burst_limit" {
  description = "Requests the stage lets through in a burst, all clients together."
  type        = number
  default     = 10
  validation {
    condition     = var.query_api_burst_limit >= 1 && floor(var.query_api_burst_limit) == var.query_api_burst_limit
    error_message = "query_api_burst_limit must be a whole number of at least 1."
  }
}

variable "query_api_per_ip_limit" {
  description = "Requests one IP address may send in 60 seconds (AWS WAF rate-based rule); more are answered 429 until its rate falls."
  type        = number
  default     = 60
  validation {
    condition     = var.query_api_per_ip_limit >= 10 && floor(var.query_api_per_ip_limit) == var.query_api_per_ip_limit
    error_message = "query_api_per_ip_limit must be a whole number of at least 10 (AWS WAF's smallest rate limit)."
  }
}

variable "query_api_cache" {
  description = "Whether the stage caches answers (0.5 GB cache, 60 s, keyed by the site's parameters and Origin; billed by the hour)."
  type        = bool
  default     = true
}

variable "query_api_ip_reputation" {
  description = "Whether the web ACL also blocks the AWS managed IP reputation list (AWSManagedRulesAmazonIpReputationList)."
  type        = bool
  default     = true
}

variable "manage_api_gateway_logging_role" {
  description = "Whether to create the role API Gateway writes CloudWatch logs with and set it for the account and region (aws_api_gateway_account). One setting per account and region: leave false where it is set already (infra/README.md)."
  type        = bool
  default     = false
}

variable "query_api_package" {
  description = "Path of the Lambda zip; null: build/spotlake-query-api.zip of this repository (make query-api-zip)."
  type        = string
  default     = null
}

locals {
  query_api_name            = "${local.name}-query-api"
  query_api_stage           = "v1"
  query_api_log_group_name  = "/aws/lambda/${local.query_api_name}"
  query_api_log_streams_arn = "arn:aws:logs:${var.aws_region}:${local.account_id}:log-group:${local.query_api_log_group_name}:log-stream:*"
  query_api_zip             = coalesce(var.query_api_package, "${path.module}/../../../build/spotlake-query-api.zip")

  # The query string names the site sends (docs/web-site.md), and the only ones the web ACL lets through.
  query_api_parameters = ["TableName", "Region", "InstanceType", "InstanceTier", "AvailabilityZone", "Start", "End"]
  # Cache keys by method (their order in a URL does not matter). Answers differ by Origin (the CORS echo).
  query_api_cache_keys = {
    GET = concat([for name in local.query_api_parameters : "method.request.querystring.${name}"], ["method.request.header.Origin"])
    ANY = ["method.request.header.Origin", "method.request.header.Access-Control-Request-Method"]
  }
  # Errors answered before the function (WAF, API Gateway) carry the site's origin, so its page can read them; the
  # function echoes the request's allowed origin itself.
  query_api_error_cors = {
    "Access-Control-Allow-Origin" = var.query_api_allowed_origins[0]
    "Vary"                        = "Origin"
  }
  query_api_gateway_errors = {
    THROTTLED           = { Status = 429, Error = "TooManyRequests", Message = "the query API is at its request rate; try again in a few seconds" }
    INTEGRATION_FAILURE = { Status = 503, Error = "Busy", Message = "every query worker is busy; try again in a few seconds" }
    INTEGRATION_TIMEOUT = { Status = 504, Error = "Timeout", Message = "the query took too long; ask for fewer regions or days" }
  }
  query_api_methods = {
    root_get  = { resource = "root", http_method = "GET" }
    root_any  = { resource = "root", http_method = "ANY" }
    proxy_get = { resource = "proxy", http_method = "GET" }
    proxy_any = { resource = "proxy", http_method = "ANY" }
  }
  query_api_resource_ids = {
    root  = aws_api_gateway_rest_api.query_api.root_resource_id
    proxy = aws_api_gateway_resource.query_api_proxy.id
  }

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

  # Least privilege: read the history table with the two calls the query sends (never Scan), read the archive's
  # lookup files, write its own logs.
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
        # Months whose items have left the table are answered from the archive (archive.tf): the verified months'
        # index and the per-market lookup files, nothing else of the bucket.
        Sid    = "ReadArchiveLookups"
        Effect = "Allow"
        Action = ["s3:GetObject"]
        Resource = [
          "${local.write_bucket_arn}/${local.archive_prefix}lookup/*",
          "${local.write_bucket_arn}/${local.archive_prefix}verified-months.json",
        ]
      },
      {
        # A market absent from a month has no lookup file. Without ListBucket S3 answers 403 for it, not 404; the
        # reader (resources/query_api/archive.py) then lists that key's own prefix and reads "not listed" as absent.
        Sid       = "ListArchiveLookups"
        Effect    = "Allow"
        Action    = ["s3:ListBucket"]
        Resource  = [local.write_bucket_arn]
        Condition = { StringLike = { "s3:prefix" = ["${local.archive_prefix}lookup/*"] } }
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

  api_gateway_trust = {
    Version = "2012-10-17"
    Statement = [
      {
        Effect    = "Allow"
        Principal = { Service = "apigateway.amazonaws.com" }
        Action    = "sts:AssumeRole"
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
  description                    = "SpotLake web site's Azure history query (resources/query_api/handler.py)"
  role                           = aws_iam_role.query_api.arn
  runtime                        = "python3.12"
  handler                        = "resources.query_api.handler.lambda_handler"
  filename                       = local.query_api_zip
  source_code_hash               = fileexists(local.query_api_zip) ? filebase64sha256(local.query_api_zip) : null
  architectures                  = ["arm64"]
  memory_size                    = 512 # CPU scales with memory: 20,000 records to JSON
  timeout                        = var.query_api_timeout_seconds + 8
  reserved_concurrent_executions = var.query_api_concurrency

  environment {
    variables = {
      SPOTLAKE_ENV                       = var.environment
      SPOTLAKE_DYNAMODB_TABLE            = var.dynamodb_table
      SPOTLAKE_AWS_REGION                = var.aws_region
      SPOTLAKE_QUERY_API_ALLOWED_ORIGINS = join(",", var.query_api_allowed_origins)
      SPOTLAKE_QUERY_API_TIMEOUT_SECONDS = tostring(var.query_api_timeout_seconds)
      SPOTLAKE_ARCHIVE_BUCKET            = var.write_bucket
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

# ---- the REST API

resource "aws_api_gateway_rest_api" "query_api" {
  name                     = local.query_api_name
  description              = "SpotLake web site's Azure history query"
  minimum_compression_size = "1024" # bytes; gzip for clients that send Accept-Encoding

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_resource" "query_api_proxy" {
  rest_api_id = aws_api_gateway_rest_api.query_api.id
  parent_id   = aws_api_gateway_rest_api.query_api.root_resource_id
  path_part   = "{proxy+}" # any path: the site calls /query-api/ through its CDN
}

resource "aws_api_gateway_method" "query_api" {
  #checkov:skip=CKV_AWS_59:the public web site calls it anonymously; the data it serves is public
  #checkov:skip=CKV2_AWS_53:the handler validates every parameter and the web ACL the query string's shape
  for_each           = local.query_api_methods
  rest_api_id        = aws_api_gateway_rest_api.query_api.id
  resource_id        = local.query_api_resource_ids[each.value.resource]
  http_method        = each.value.http_method
  authorization      = "NONE"
  request_parameters = { for key in local.query_api_cache_keys[each.value.http_method] : key => false }
}

resource "aws_api_gateway_integration" "query_api" {
  for_each                = aws_api_gateway_method.query_api
  rest_api_id             = aws_api_gateway_rest_api.query_api.id
  resource_id             = each.value.resource_id
  http_method             = each.value.http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST" # how API Gateway invokes a Lambda function, whatever the client's method
  uri                     = aws_lambda_function.query_api.invoke_arn
  timeout_milliseconds    = 29000
  cache_key_parameters    = local.query_api_cache_keys[each.value.http_method]
  # one namespace per method kind, shared by both paths: the answer does not depend on the path
  cache_namespace = "query-${lower(each.value.http_method)}"
}

# Answers API Gateway gives without the function (the stage throttled, the function throttled by its reserved
# concurrency or timed out), in the handler's JSON shape and readable by the site's page (CORS), so that a visitor
# sees why and no error is a bare HTML or an unreadable one (docs/security.md "Sizing the query API").
resource "aws_api_gateway_gateway_response" "query_api" {
  for_each      = local.query_api_gateway_errors
  rest_api_id   = aws_api_gateway_rest_api.query_api.id
  response_type = each.key
  status_code   = tostring(each.value.Status)
  response_templates = {
    "application/json" = jsonencode(each.value)
  }
  response_parameters = { for name, value in local.query_api_error_cors : "gatewayresponse.header.${name}" => "'${value}'" }
}

resource "aws_api_gateway_deployment" "query_api" {
  rest_api_id = aws_api_gateway_rest_api.query_api.id

  triggers = {
    redeployment = sha1(jsonencode([
      aws_api_gateway_resource.query_api_proxy,
      aws_api_gateway_method.query_api,
      aws_api_gateway_integration.query_api,
      aws_api_gateway_gateway_response.query_api,
    ]))
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "query_api_access" {
  #checkov:skip=CKV_AWS_158:the AWS managed encryption of CloudWatch Logs suffices; access logs hold no secret
  #checkov:skip=CKV_AWS_338:retention is a variable (default 90 days); a year is not needed for access logs
  name              = "/aws/apigateway/${local.query_api_name}"
  retention_in_days = var.log_retention_days
}

# API Gateway's own execution log group (errors only), created here so that it has a retention.
resource "aws_cloudwatch_log_group" "query_api_execution" {
  #checkov:skip=CKV_AWS_158:the AWS managed encryption of CloudWatch Logs suffices; execution logs hold no secret
  #checkov:skip=CKV_AWS_338:retention is a variable (default 90 days); a year is not needed for execution logs
  name              = "API-Gateway-Execution-Logs_${aws_api_gateway_rest_api.query_api.id}/${local.query_api_stage}"
  retention_in_days = var.log_retention_days
}

resource "aws_api_gateway_stage" "query_api" {
  #checkov:skip=CKV_AWS_73:X-Ray tracing is not needed; the access log and the function's JSON log time every request
  #checkov:skip=CKV2_AWS_51:a public API called by browsers: no client certificate to ask for
  #checkov:skip=CKV2_AWS_4:logging_level is ERROR (method settings); per-method metrics are billed and the stage's suffice
  #checkov:skip=CKV2_AWS_77:no Java behind it (Log4j), and the web ACL lets only the site's seven parameters through
  rest_api_id           = aws_api_gateway_rest_api.query_api.id
  deployment_id         = aws_api_gateway_deployment.query_api.id
  stage_name            = local.query_api_stage
  cache_cluster_enabled = var.query_api_cache
  cache_cluster_size    = var.query_api_cache ? "0.5" : null

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
      latencyMs         = "$context.responseLatency"
      integrationMs     = "$context.integrationLatency"
      integrationStatus = "$context.integrationStatus"
      error             = "$context.error.message"
      waf               = "$context.wafResponseCode"
      responseType      = "$context.error.responseType" # THROTTLED, WAF_FILTERED, ...
    })
  }

  depends_on = [aws_api_gateway_account.logging]
}

resource "aws_api_gateway_method_settings" "query_api" {
  rest_api_id = aws_api_gateway_rest_api.query_api.id
  stage_name  = aws_api_gateway_stage.query_api.stage_name
  method_path = "*/*"

  settings {
    # the stage's throttle, shared by every client (the web ACL limits each IP below it)
    throttling_rate_limit  = var.query_api_rate_limit
    throttling_burst_limit = var.query_api_burst_limit
    caching_enabled        = var.query_api_cache
    cache_ttl_in_seconds   = 60
    cache_data_encrypted   = true
    # a client's Cache-Control: max-age=0 cannot flush an entry (that needs execute-api:InvalidateCache); its
    # request is answered as usual, from the cache
    require_authorization_for_cache_control    = true
    unauthorized_cache_control_header_strategy = "SUCCEED_WITHOUT_RESPONSE_HEADER"
    metrics_enabled                            = false # per-method metrics are billed; the stage's are enough
    logging_level                              = "ERROR"
    data_trace_enabled                         = false # would log whole answers
  }

  depends_on = [aws_cloudwatch_log_group.query_api_execution]
}

resource "aws_lambda_permission" "query_api" {
  statement_id  = "AllowRestApiInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.query_api.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.query_api.execution_arn}/*/*/*" # any stage, method and path of this API
}

# API Gateway writes a REST stage's logs with a role set once per account and region (not per API): created only
# when var.manage_api_gateway_logging_role says this module owns that setting. The AWS managed policy is the one
# AWS documents for it; the role is API Gateway's, for every REST API of the account in the region.
resource "aws_iam_role" "api_gateway_logging" {
  count              = var.manage_api_gateway_logging_role ? 1 : 0
  name               = "${local.name}-apigateway-logging"
  description        = "API Gateway's CloudWatch Logs role for the account and region (set by ${local.name})"
  assume_role_policy = jsonencode(local.api_gateway_trust)
}

resource "aws_iam_role_policy_attachment" "api_gateway_logging" {
  count      = var.manage_api_gateway_logging_role ? 1 : 0
  role       = aws_iam_role.api_gateway_logging[0].name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}

resource "aws_api_gateway_account" "logging" {
  count               = var.manage_api_gateway_logging_role ? 1 : 0
  cloudwatch_role_arn = aws_iam_role.api_gateway_logging[0].arn

  depends_on = [aws_iam_role_policy_attachment.api_gateway_logging]
}

# ---- AWS WAF: per-client limits before the cache and the function

resource "aws_wafv2_regex_pattern_set" "query_api_repeated_parameter" {
  name        = "${local.query_api_name}-repeated-parameter"
  description = "A query string naming one of the site's parameters twice"
  scope       = "REGIONAL"

  dynamic "regular_expression" {
    for_each = local.query_api_parameters
    content {
      regex_string = "(?:^|&)${regular_expression.value}=.*&${regular_expression.value}="
    }
  }
}

resource "aws_wafv2_web_acl" "query_api" {
  #checkov:skip=CKV2_AWS_31:WAF logging is not enabled: its metrics and sampled requests show blocks; full logs cost more than the API
  #checkov:skip=CKV_AWS_192:the API runs no Java (Log4j); its input is refused unless it is the site's seven parameters
  name        = local.query_api_name
  description = "SpotLake Azure history query: per-IP rate limit and the site's query shape"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  # Counted first, so that every request of a client counts, refused or not.
  rule {
    name     = "per-ip-rate"
    priority = 0

    action {
      block {
        custom_response {
          response_code            = 429
          custom_response_body_key = "too-many-requests"
          dynamic "response_header" {
            for_each = local.query_api_error_cors
            content {
              name  = response_header.key
              value = response_header.value
            }
          }
        }
      }
    }

    statement {
      rate_based_statement {
        limit                 = var.query_api_per_ip_limit
        evaluation_window_sec = 60
        aggregate_key_type    = "IP"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.query_api_name}-per-ip-rate"
      sampled_requests_enabled   = true
    }
  }

  # Only the site's parameters, each at most once: anything else would share a cache entry it does not belong to.
  rule {
    name     = "site-parameters-only"
    priority = 1

    action {
      block {
        custom_response {
          response_code            = 400
          custom_response_body_key = "bad-query"
          dynamic "response_header" {
            for_each = local.query_api_error_cors
            content {
              name  = response_header.key
              value = response_header.value
            }
          }
        }
      }
    }

    statement {
      or_statement {
        statement {
          not_statement {
            statement {
              regex_match_statement {
                regex_string = "^(?:(?:${join("|", local.query_api_parameters)})=[^&]*(?:&|$))*$"
                field_to_match {
                  query_string {}
                }
                text_transformation {
                  priority = 0
                  type     = "NONE"
                }
              }
            }
          }
        }
        statement {
          regex_pattern_set_reference_statement {
            arn = aws_wafv2_regex_pattern_set.query_api_repeated_parameter.arn
            field_to_match {
              query_string {}
            }
            text_transformation {
              priority = 0
              type     = "NONE"
            }
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.query_api_name}-site-parameters-only"
      sampled_requests_enabled   = true
    }
  }

  dynamic "rule" {
    for_each = var.query_api_ip_reputation ? ["AWSManagedRulesAmazonIpReputationList"] : []
    content {
      name     = "aws-ip-reputation"
      priority = 2

      override_action {
        none {}
      }

      statement {
        managed_rule_group_statement {
          name        = rule.value
          vendor_name = "AWS"
        }
      }

      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${local.query_api_name}-ip-reputation"
        sampled_requests_enabled   = true
      }
    }
  }

  custom_response_body {
    key          = "too-many-requests"
    content_type = "APPLICATION_JSON"
    content      = jsonencode({ Status = 429, Error = "TooManyRequests", Message = "too many requests from this address; wait a minute" })
  }

  custom_response_body {
    key          = "bad-query"
    content_type = "APPLICATION_JSON"
    content      = jsonencode({ Status = 400, Error = "BadRequest", Message = "the query string may name only ${join(", ", local.query_api_parameters)}, each at most once" })
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = local.query_api_name
    sampled_requests_enabled   = true
  }

  lifecycle {
    # One IP address must never be able to take the whole stage throttle (docs/security.md).
    precondition {
      condition     = var.query_api_per_ip_limit / 60 < var.query_api_rate_limit
      error_message = "query_api_per_ip_limit / 60 (one IP's requests per second) must stay below query_api_rate_limit (the whole stage's)."
    }
  }
}

resource "aws_wafv2_web_acl_association" "query_api" {
  resource_arn = aws_api_gateway_stage.query_api.arn
  web_acl_arn  = aws_wafv2_web_acl.query_api.arn
}

output "query_api_url" {
  description = "The history query endpoint for the web site (its query form's `url`; or a CDN path in front of it)."
  value       = aws_api_gateway_stage.query_api.invoke_url
}

output "query_api_function" {
  description = "Name of the query API's Lambda function."
  value       = aws_lambda_function.query_api.function_name
}
