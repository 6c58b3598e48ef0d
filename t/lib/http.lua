-- Kept for the specs that require "http": the module is torii.testing.http.
return require "torii.testing.http"
