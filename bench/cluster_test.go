package bench

import "testing"

func TestParseStatus_LeaderFromAnswerOrRoles(t *testing.T) {
	for _, tc := range []struct {
		name, json, leader string
		voters             int
	}{
		{"answer names the leader", `{"cluster_id":"4a16","node":"node2","leader":"node2","nodes":[
			{"id":"node1","zone":"zone-a","role":"unreachable","voter":true,"applied_index":0},
			{"id":"node2","zone":"zone-b","role":"leader","voter":true,"last_contact":"2026-11-29T03:37:35.919744646Z","applied_index":18767,"term":3},
			{"id":"node3","zone":"zone-c","role":"follower","voter":true,"applied_index":18767,"term":3}]}`, "node2", 3},
		{"only roles", `{"nodes":[{"id":"node3","role":"leader","voter":true},{"id":"node1","role":"follower"}]}`, "node3", 1},
		{"no leader", `{"node":"node1","leader":"","nodes":[{"id":"node1","role":"candidate","voter":true}]}`, "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := ParseStatus([]byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			voters := 0
			for _, n := range st.Nodes {
				if n.Voter {
					voters++
				}
			}
			if st.Leader != tc.leader || voters != tc.voters {
				t.Errorf("leader %q, voters %d; want %q, %d", st.Leader, voters, tc.leader, tc.voters)
			}
		})
	}
	if _, err := ParseStatus([]byte("not json")); err == nil {
		t.Error("ParseStatus accepted garbage")
	}
}
