"""The cluster demo behind ``vfkeeper demo``: simulated hosts, a real controller on SQLite,
and a user's session against its REST API.

* :mod:`.scenario` — the hosts, device specs, networks and instances (pure data)
* :mod:`.server` — the controller app under uvicorn on a loopback port, in a thread
* :mod:`.session` — the demo as an API client and CLI user, with a Rich console
* :mod:`.steps` / :mod:`.views` — each step, and what it reads back and prints
* :mod:`.agents` — a real host agent per simulated host (fake kernel, its own hypervisor)
* :mod:`.hypervisor` — domains on libvirt's test driver, device hot-plug in the agent's model
* :mod:`.agent_steps` — the steps in which the agents act: attach, the XML in a domain, delete
* :mod:`.runner` — all of it in order; ``--keep`` leaves the controller running
"""
