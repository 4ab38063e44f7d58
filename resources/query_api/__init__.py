"""The web site's history query: a deployable of its own, an AWS Lambda behind API Gateway (docs/web-site.md,
infra/modules/collector/query_api.tf), packaged apart from the collector by package.py.

- request.py: what a request may ask and cost, and the records of an answer (pure: no I/O);
- reader.py: the one DynamoDB reader (Query and GetItem), which reads months past the retention from archive.py
  (the archive's lookup files on S3, docs/design.md "Hot and cold");
- hints.py: why an empty answer is empty;
- handler.py: the HTTP/Lambda handler (parameters, errors, CORS, the read budget's headers);
- package.py: the Lambda zip.
Imports: the standard library, boto3/botocore (the Lambda runtime has them), resources.settings and the core modules
package.py lists; never pandas, Dagster or the rest of resources/ (tests/test_layers.py).
"""
