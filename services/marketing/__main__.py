"""python -m services.marketing [worker|topics]"""

from services.marketing import agents, views  # noqa: F401 - they register on import
from services.marketing.app import runtime

runtime.main()
