"""Contact requests from the bill page, their message threads and attachments."""
