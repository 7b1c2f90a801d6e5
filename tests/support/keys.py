"""Secrets strong enough for production's checks (app.config.key_strength_problem), each different:
for tests that load a production configuration. Made once with secrets.token_urlsafe(32)."""

SECRET_KEY = "jQpQQTV4ltOqNjcpWF45c_nO1JX-WU2KjeQ_ABH56oc"
LINK_SIGNING_KEY = "s6HTrY3vyDpYxjwMLOAnrU6euz96Yc5fXeceOPLXVI4"
OLD_LINK_SIGNING_KEY = "TtArEZNNdHHJbHRNr9woa47T4eM-qgXGf1YgK1uC4kk"
DATA_ENCRYPTION_KEY = "yGZzdA9OYHIV3sIoc8rwURb8hKwRL46x-PcXU6qkB2M"

#: The environment of a production configuration that starts: the three secrets and an https base URL.
PRODUCTION_ENV = {
    "PORTAL_ENV": "production",
    "SECRET_KEY": SECRET_KEY,
    "LINK_SIGNING_KEYS": LINK_SIGNING_KEY,
    "DATA_ENCRYPTION_KEYS": DATA_ENCRYPTION_KEY,
    "PORTAL_BASE_URL": "https://pay.example.com",
}
