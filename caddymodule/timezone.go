package caddymodule

import (
	"fmt"
	"time"

	// The zone database inside the binary: a container image without
	// /usr/share/zoneinfo must still know the zone an operator names.
	_ "time/tzdata"
)

// timeZone loads the IANA zone named by time_zone, UTC when none is named.
func timeZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil || name == "Local" {
		return nil, fmt.Errorf("mailgate: time_zone %q: not an IANA time zone name such as Europe/Brussels", name)
	}
	return loc, nil
}
