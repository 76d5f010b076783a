"""HTTP APIs: the upload API (``uploads``) and the review/admin API (``review``).

Routes live here (Powertools resolvers); the Lambda handlers only wire adapters in.
"""
