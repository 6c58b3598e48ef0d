-- noop: an empty function in every phase. bench/plugins.sh times each
-- phase's run with it (TORII_PHASE_TIMES): what a plugin costs for just
-- being in a phase.
local function nothing() end

return {
  name = "noop",
  version = "1.0",
  priority = 0,
  rewrite = nothing,
  access = nothing,
  balancer = nothing,
  header_filter = nothing,
  body_filter = nothing,
  log = nothing,
}
