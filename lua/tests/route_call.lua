-- One call into voice_ai/route.lua under the stub (run from lua/: lua5.2 tests/route_call.lua).
package.path = "./?.lua;" .. package.path
require("tests.stub").run("voice_ai/route.lua")
