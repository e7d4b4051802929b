"""The Lambda handlers, one package each."""

# What X-Ray traces (Powertools' Tracer): botocore, through which every AWS call goes, PynamoDB's too. Not Powertools'
# default, X-Ray's patch_all: it imports every library it knows how to patch (PynamoDB in handlers that never use
# it, sqlite3, and requests where installed) at each cold start, and its PynamoDB patch records every DynamoDB call a
# second time, parsing each answer again.
TRACED = ("botocore",)
