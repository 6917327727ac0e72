-- One call into voice_ai/secretary.lua under the stub (run from lua/: lua5.2 tests/secretary_call.lua).
package.path = "./?.lua;" .. package.path
require("tests.stub").run("voice_ai/secretary.lua")
