"""The HTTP vocabulary the agent's API and the collector share: one error body and reason table, bearer-token
auth as a FastAPI dependency, one body limit, one uvicorn set-up, the OpenAPI document's error declarations.

What each service serves lives with it (agent/api/, collector/); nothing here knows either one's routes.
"""
