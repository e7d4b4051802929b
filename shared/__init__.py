"""parcours' domain code, shared by every Lambda function and by the local tools."""
