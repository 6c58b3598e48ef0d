-- Kept for the specs that require "proc": the module is torii.testing.proc.
return require "torii.testing.proc"
