"""The thin model-service layer (plain Python, no Qt): load, encode (cached), compose, interpolate, project, jobs."""
