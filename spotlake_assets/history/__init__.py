"""The Azure time series in DynamoDB: item keys (keys.py) and the web site's history query (query.py).
The writer is resources/dynamodb.py."""
