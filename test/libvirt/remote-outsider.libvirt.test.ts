// test-runs-as: root
// (only root's sshd can log in another user: here the outsider `<test user>-out`, not in group libvirt)
//
// The far side refuses: the SSH login over qemu+ssh works, but the remote user is outside group
// libvirt, so polkit on that host refuses `org.libvirt.unix.manage`. The error names the remote user,
// the host and the usermod fix on that host, not "start the daemons" and not an ssh problem.
import test from "ava";

import { toolFailure, virsh } from "../../infra/libvirt/exec";
import { startSshd, type Sshd } from "./sshd-harness";

const OUTSIDER = `${process.env.CILIUM_LAB_TEST_USER || "clab"}-out`;

let sshd: Sshd;
test.before(async () => {
  sshd = await startSshd({ loginUser: OUTSIDER });
  sshd.trustHostKey();
});
test.after.always(async () => {
  await sshd?.stop();
});

test("a remote user outside group libvirt gets the usermod fix for that host", async (t) => {
  const uri = sshd.uri();
  const result = await virsh(uri, ["uri"]);
  t.not(result.code, 0);
  const message = toolFailure("connecting", result, "n/a", uri).message;
  t.true(
    message.startsWith(
      `connecting failed: the SSH login to ${OUTSIDER}@127.0.0.1:${sshd.port} works, but user ${OUTSIDER} may not manage libvirt there (`,
    ),
    message,
  );
  t.true(
    message.endsWith(
      `Fix: on 127.0.0.1: \`sudo usermod -aG libvirt ${OUTSIDER}\`; the next ssh login has the new group.`,
    ),
    message,
  );
  t.regex(
    sshd.log(),
    new RegExp(`Accepted publickey for ${OUTSIDER} from 127\\.0\\.0\\.1`),
    "the ssh login itself worked",
  );
});
