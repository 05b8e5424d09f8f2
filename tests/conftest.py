# The suite runs as the ibtui command does: OpenMP threads sleep while they wait (an import of
# ibtui no longer sets this for the host process; see ibtui/engine/processes.py).
from ibtui.engine.processes import set_openmp_policy

set_openmp_policy()
