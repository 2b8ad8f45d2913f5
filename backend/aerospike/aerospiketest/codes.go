package aerospiketest

// Aerospike result codes returned by the server.
const (
	rcOK               = 0
	rcServerError      = 1
	rcKeyNotFound      = 2
	rcGeneration       = 3
	rcParameter        = 4
	rcKeyExists        = 5
	rcBinExists        = 6
	rcTimeout          = 9
	rcBinType          = 12
	rcRecordTooBig     = 13
	rcKeyBusy          = 14
	rcUnsupported      = 16
	rcBinNotFound      = 17
	rcDeviceOverload   = 18
	rcInvalidNamespace = 20
	rcBinNameTooLong   = 21
	rcForbidden        = 22
	rcElementNotFound  = 23
	rcElementExists    = 24
	rcEnterpriseOnly   = 25
	rcOpNotApplicable  = 26
	rcFilteredOut      = 27
	rcIndexFound       = 200
	rcIndexNotFound    = 201
)

// Result codes a Fault may return; any Aerospike result code in 1..255 is
// accepted.
const (
	// CodeTimeout is TIMEOUT (9).
	CodeTimeout = rcTimeout
	// CodeKeyBusy is KEY_BUSY (14).
	CodeKeyBusy = rcKeyBusy
	// CodeDeviceOverload is DEVICE_OVERLOAD (18).
	CodeDeviceOverload = rcDeviceOverload
	// CodeServerError is SERVER_ERROR (1).
	CodeServerError = rcServerError
)
