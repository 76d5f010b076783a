"""AWS adapters: the only place boto3 and pynamodb meet the domain code."""
