-- bench/real-broker/nofilter.lua (E0): the empty API 2 script without filter(). E - E0 is
-- what one filter() call costs Broker's output thread (calibration of tests/host, issue 34).
broker_api_version = 2
function init(conf) end
function write(e) return true end
