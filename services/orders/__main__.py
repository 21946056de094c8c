"""python -m services.orders [worker|topics]"""

from services.orders import agents, views  # noqa: F401 - they register on import
from services.orders.app import runtime

runtime.main()
