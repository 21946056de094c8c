"""python -m services.sales [worker|topics]"""

from services.sales import agents, views  # noqa: F401 - they register on import
from services.sales.app import runtime

runtime.main()
