-- luacheck configuration (checked by `make lint`).
std = "luajit"
max_line_length = 120
files["t/spec"] = { std = "+busted" }
files["t/integration"] = { std = "+busted" }
exclude_files = { "build/**" }
