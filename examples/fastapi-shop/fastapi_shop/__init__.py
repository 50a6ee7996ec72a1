"""A FastAPI shop API and polyserve queue and schedule handlers, deployed as one app."""
