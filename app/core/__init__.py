"""What several features share and nothing else: dates in a creditor's zone and date parsing,
the validation of e-mail addresses and phone numbers, the StrEnum bases of stored codes. The lowest
layer: it imports no feature."""
