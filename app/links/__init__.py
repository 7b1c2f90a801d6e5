"""Signed access links: the signer, the AccessLink row, issue/resolve/revoke."""
