"""Imports every model module, so that metadata is complete for Alembic and the ORM."""

from app import audit as audit_models  # noqa: F401
from app.analytics import models as analytics_models  # noqa: F401
from app.backoffice import models as backoffice_models  # noqa: F401
from app.billing import models as billing_models  # noqa: F401
from app.content import models as content_models  # noqa: F401
from app.core import jobs as ops_jobs  # noqa: F401
from app.creditors import models as creditor_models  # noqa: F401
from app.debt_collection import models as debt_collection_models  # noqa: F401
from app.dunning import models as dunning_models  # noqa: F401
from app.dunning.letters import models as letter_models  # noqa: F401
from app.events import models as event_models  # noqa: F401
from app.links import models as link_models  # noqa: F401
from app.outbox import models as outbox_models  # noqa: F401
from app.payments import models as payment_models  # noqa: F401
from app.payments.bank import models as bank_models  # noqa: F401
from app.privacy import models as privacy_models  # noqa: F401
from app.resolutions import models as resolution_models  # noqa: F401
from app.support import models as support_models  # noqa: F401
