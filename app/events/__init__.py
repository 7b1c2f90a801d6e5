"""Events to creditors: the catalogue of what happens to their bills (`catalogue`), recorded once in
the transaction of the change (`services.record`, told by the features' signals: `handlers`, connected
by the app factory), the feed (`feed`), webhook endpoints with their secrets and the delivery log
(`services`), and the delivery itself: an outbox message rendered as a Standard Webhooks request
(`deliveries`). docs/events.md."""
