-- Kept for the specs that require "gateway": the module is torii.testing.gateway.
return require "torii.testing.gateway"
