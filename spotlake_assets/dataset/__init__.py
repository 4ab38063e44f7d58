"""The merged dataset: the merge, the DynamoDB load and the public files."""
