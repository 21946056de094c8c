"""python -m services.webhooks [worker|topics]"""

from services.webhooks import agents, views  # noqa: F401 - they register on import
from services.webhooks.app import runtime

runtime.main()
