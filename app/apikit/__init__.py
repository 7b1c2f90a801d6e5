"""What the JSON APIs share (the creditor API, `app.api`, and the collection partners' API,
`app.debt_collection.views.api`): the error answers in one shape with the rollback (`errors`) and
what they read of a request, the bearer key and the JSON body (`reading`). It imports neither API."""
