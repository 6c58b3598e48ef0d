-- luacheck configuration (checked by `make lint`).
std = "luajit"
max_line_length = 120
files["t/spec"] = { std = "+busted" }
files["t/integration"] = { std = "+busted" }
files["t/inprocess"] = { std = "+busted" }
files["plugins/spec"] = { std = "+busted" }
files["plugins/*/spec"] = { std = "+busted" }
files["examples/*/spec"] = { std = "+busted" }
exclude_files = { "build/**" }
