/*
 * Controlled payment (escrow) between two secure elements, with the two
 * endings racing, the expiry passing at any moment and the terminals acting
 * in any order (docs/se-apdu.md "Controlled payment (escrow)", DESIGN.md
 * §6.6). One escrow note of AMT from the payer SE A to the payee SE B;
 * models/README.md says what each part mirrors.
 *
 *   spin -a cpay.pml && gcc -O2 -DSAFETY -o pan pan.c && ./pan -m100000
 *
 * ROLLBACK: the payee's host may also bring back an older copy of its state
 * (a restored state), once, at any moment; the rules checked are then that
 * no value is created and the note ends at most once.
 *
 * Variants (spin -DNAME -a cpay.pml), each of which must fail unless noted:
 *   BROKEN_ACCEPT_ON_KEY        the payee credits on the released key, without
 *                               the registry's record of its claim
 *   BROKEN_REFUND_ON_SIGNATURE  the payer credits itself back on the payee's
 *                               signed refund, without claiming the note
 *                               (the patent's refund); fails with ROLLBACK,
 *                               or with BROKEN_PAYEE_BOTH
 *   BROKEN_PAYEE_BOTH           a payee SE that accepts a note it refunded;
 *                               alone it holds: the registry still lets only
 *                               one ending through
 *   BROKEN_CLOSE_ANY_RECORD     CPAY CLOSE credits the payer back on any
 *                               record of the note, the payee's claim too
 *   ACCEPT_CHECKS_TIME          the applet before its fix: CPAY ACCEPT refused
 *                               a note past its expiry even with the record
 *                               of a claim made in time
 *   REFUND_AFTER_CLAIM          the applet before its fix: CPAY REFUND signed a
 *                               refund for a note this SE had claimed
 */

#define A0     2           /* the payer's balance before */
#define AMT    1           /* the escrow note */
#define TOTAL  A0          /* all the value there is */

mtype = { NONE, PAYEE, PAYER };

/* ---- Payer SE A: the applet's state (st_), which its host saves before each
 * answer leaves (Device::settle_command). */
byte a_bal = A0;
byte a_notes;        /* CPAY NOTE signed it (it debits once) */
bool a_open;         /* cpay_open holds the note */
byte a_backs;        /* ghost: times CPAY CLOSE credited the value back */

/* ---- Payee SE B. */
byte b_bal;
byte b_credits;      /* times CPAY ACCEPT credited it */
bool b_recv;         /* received_notes holds the id (accepted or refunded) */
bool b_refd;         /* cpay_refunded holds it */
bool b_claimed;      /* claimed_notes holds it: it signed a claim to accept it */

#define b_cred (b_credits > 0)

/* ---- The world: signed documents, once out, may be used any number of
 * times or never. */
bool note_out;       /* the signed cpay.note, handed to the payee */
bool key_out;        /* the payee's wrapped key, from CPAY RELEASE */
bool refund_out;     /* a signed cpay.refund */
bool b_claim_out;    /* the payee's signed claim (CPAY CLAIM) */
bool a_claim_out;    /* the payer's signed claim of its own note (CPAY REFUND CLAIM) */
mtype holder = NONE; /* the registry's record: whose claim of the note won (first wins) */
bool expired;        /* the clock has passed the note's exp */

#ifdef ROLLBACK
/* The copy of B's saved state its host brings back. */
bool snap_taken, restored;
byte s_bal, s_credits;
bool s_recv, s_refd, s_claimed;
#endif

/* ---- Payer commands (src/se/applet_cpay.cc). */
inline cpay_note() {       /* CPAY NOTE: debit, sign, open entry: one state update */
  a_bal = a_bal - AMT; a_notes++; a_open = true; note_out = true;
  printf("@ A: CPAY NOTE: debits it, the note is out\n")
}
inline cpay_release() {    /* CPAY RELEASE: the payee's wrapped key leaves */
  key_out = true; printf("@ A: CPAY RELEASE: the payee's key is out\n")
}
inline cpay_refund_claim() { /* CPAY REFUND CLAIM: on the payee's refund, or from exp on */
  a_claim_out = true; printf("@ A: CPAY REFUND CLAIM: signs a claim of its own note\n")
}
inline cpay_close() {      /* CPAY CLOSE with the registry's record */
  if
#ifdef BROKEN_CLOSE_ANY_RECORD
  :: true ->
#else
  :: holder == PAYER ->
#endif
     a_bal = a_bal + AMT; a_backs++; a_open = false;
     printf("@ A: CPAY CLOSE on the record (holder %e): refunded, credited back\n", holder)
  :: holder == PAYEE -> a_open = false;
     printf("@ A: CPAY CLOSE on the record of B's claim: paid, closed\n")
  fi
}

/* ---- Payee commands. open_cpay: a note it refunded or took is refused. */
#ifdef BROKEN_PAYEE_BOTH
#define b_may_open  (!b_cred)
#else
#define b_may_open  (!b_recv && !b_refd)
#endif
#define b_may_claim (note_out && key_out && b_may_open && !expired)
/* CPAY ACCEPT: the key, and the record of its own claim (check_won_record:
 * claimed before exp); before its fix it also wanted the SE's clock before exp. */
#ifdef ACCEPT_CHECKS_TIME
#define b_may_accept (note_out && key_out && b_may_open && holder == PAYEE && !expired)
#elif defined(BROKEN_ACCEPT_ON_KEY)
#define b_may_accept (note_out && key_out && b_may_open && !expired)
#else
#define b_may_accept (note_out && key_out && b_may_open && holder == PAYEE)
#endif
#ifdef REFUND_AFTER_CLAIM
#define b_may_refund (note_out && (b_refd || b_may_open))
#else
#define b_may_refund (note_out && (b_refd || (b_may_open && !b_claimed)))
#endif

inline cpay_claim() {      /* CPAY CLAIM: remembers the claim, then it leaves */
  b_claimed = true; b_claim_out = true; printf("@ B: CPAY CLAIM: signs a claim of the note\n")
}
inline cpay_accept() {
  b_bal = b_bal + AMT; b_credits++; b_recv = true;
  printf("@ B: CPAY ACCEPT: credits it\n")
}
inline cpay_refund() {     /* CPAY REFUND: marks it refunded (or signs the same refund again) */
  b_refd = true; b_recv = true; refund_out = true; printf("@ B: CPAY REFUND: signs a refund\n")
}

/* ---- The registry (src/registry/registry.cc, expiry_allows): the first claim
 * wins; it takes the payee's claim only before exp, the payer's any time. */
inline registry_b() { holder = PAYEE; printf("@ registry: records B's claim\n") }
inline registry_a() { holder = PAYER; printf("@ registry: records A's claim\n") }

/* ---- The payer's terminal: any command, any number of times, in any order. */
active proctype PayerTerm() {
  do
  :: atomic { a_notes == 0 -> cpay_note() }                                /* zf wallet escrow pay */
  :: atomic { a_open && !key_out -> cpay_release() }                       /* zf wallet escrow release */
#ifdef BROKEN_REFUND_ON_SIGNATURE
  :: atomic { a_open && refund_out -> a_bal = a_bal + AMT; a_backs++; a_open = false;
              printf("@ A: credits itself back on B's signed refund\n") }
#endif
  :: atomic { a_open && (refund_out || expired) && !a_claim_out -> cpay_refund_claim() }  /* zf wallet escrow refund */
  :: atomic { a_open && holder != NONE -> cpay_close() }                   /* zf wallet escrow close */
  :: break
  od
}

/* ---- The payee's terminal, likewise. */
active proctype PayeeTerm() {
  do
  :: atomic { b_may_claim && !b_claim_out -> cpay_claim() }                /* zf wallet escrow accept: claim */
  :: atomic { b_may_accept -> cpay_accept() }                              /* zf wallet escrow accept: credit */
  :: atomic { b_may_refund && !refund_out -> cpay_refund() }               /* zf wallet escrow refund (payee) */
  :: break
  od
}

/* ---- The registry and the clock, racing both. */
active proctype World() {
  do
  :: atomic { b_claim_out && holder == NONE && !expired -> registry_b() }
  :: atomic { a_claim_out && holder == NONE -> registry_a() }
  :: atomic { !expired -> expired = true; printf("@ clock: the note expires\n") }
#ifdef ROLLBACK
  :: atomic { !snap_taken -> snap_taken = true;
              s_bal = b_bal; s_credits = b_credits; s_recv = b_recv; s_refd = b_refd; s_claimed = b_claimed;
              printf("@ B's host: copies B's state\n") }
  :: atomic { snap_taken && !restored -> restored = true;
              b_bal = s_bal; b_credits = s_credits; b_recv = s_recv; b_refd = s_refd; b_claimed = s_claimed;
              printf("@ B's host: brings back the old copy of B's state\n") }
#endif
  :: break
  od
}

/* ---- The value rules (models/README.md). In escrow: A holds the note open
 * and B has not credited it, or A closed it on B's claim and B's SE still
 * opens the note (it has not refunded it). */
#define IN_ESCROW      ((!b_cred && (a_open || (holder == PAYEE && b_may_open))) -> AMT : 0)
#define CONSERVED      (a_bal + b_bal + IN_ESCROW == TOTAL)
#define NOT_CREATED    (a_bal + b_bal + ((a_open && !b_cred) -> AMT : 0) <= TOTAL)
#define ENDS_ONCE      (b_credits <= 1 && a_backs <= 1 && !(a_backs > 0 && b_cred))
#ifdef ROLLBACK
#define VALUE_RULES    (NOT_CREATED && ENDS_ONCE)
#else
#define VALUE_RULES    (CONSERVED && NOT_CREATED && ENDS_ONCE)
#endif

#define rule(ok, text)  if :: !(ok) -> printf(text); assert(ok) :: else -> skip fi
inline check_rules() {
#ifndef ROLLBACK
  rule(CONSERVED, "VIOLATED: value created or lost (payer + payee + in escrow != total)\n");
#endif
  rule(NOT_CREATED, "VIOLATED: value created (payer + payee + open escrow > total)\n");
  rule(ENDS_ONCE, "VIOLATED: the note ended twice (credited twice, refunded twice, or both)\n")
}

active proctype Monitor() {
end_watch:
  atomic { !VALUE_RULES -> check_rules() }
}

/* ---- The end: nothing else moves. Both SEs are online and the terminals
 * finish as docs/se-apdu.md tells them: a payee that can still claim may do
 * so; time passes the expiry; a payee whose claim won accepts; the payer
 * takes back what nobody took and closes the note. */
active proctype Finish() {
  timeout;
  atomic {
    printf("@ the end: the terminals finish\n");
    if
    :: holder == NONE && b_may_claim -> cpay_claim(); registry_b()
    :: else -> skip
    fi;
    expired = true; printf("@ clock: the note expires\n");
    if
    :: holder == PAYEE && b_may_accept -> cpay_accept()
    :: else -> skip
    fi;
    if
    :: a_open && holder == NONE -> cpay_refund_claim(); registry_a()
    :: else -> skip
    fi;
    if
    :: a_open -> cpay_close()
    :: else -> skip
    fi;
    printf("@ A holds %d, B holds %d; A's note open %d; B credited %d time(s); A refunded %d time(s)\n",
           a_bal, b_bal, a_open, b_credits, a_backs);
    check_rules();
    rule(!a_open, "VIOLATED: after the recovery the escrow note is still open\n");
#ifndef ROLLBACK
    rule(a_bal + b_bal == TOTAL, "VIOLATED: after the recovery the balances do not add up\n");
    rule(a_notes == 0 || b_credits + a_backs == 1, "VIOLATED: after the recovery the note did not end exactly once\n")
#endif
  }
}
