# Notification suppression and the final-check re-arm.
ring blkif
f.req operation=0 id=1
f.req operation=0 id=2
f.push_notify
f.req operation=0 id=3
f.push_notify
b.has_req
b.get_req
b.get_req
b.get_req
b.final_check
f.req operation=0 id=4
f.push_notify
f.push_notify
s.set req_event 10
f.req
f.req
f.req
f.req
f.req
f.push_notify
f.req
f.push_notify
s.set req_event 3
f.req
f.push_notify
b.rsp id=1 operation=0 status=0
b.push_notify
b.rsp id=2
b.push_notify
f.final_check
f.get_rsp
f.get_rsp
f.final_check
f.final_check
b.rsp id=3
b.push_notify
s.set rsp_event 0
b.rsp id=4
b.push_notify
s.set rsp_event 100
b.push_notify
f.has_rsp
b.final_check
b.has_req
state
