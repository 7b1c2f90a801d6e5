"""The back office: agents sign in (password and a second factor), see their creditors' work, act."""
