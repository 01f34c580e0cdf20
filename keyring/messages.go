package keyring

// Purposes of the messaging columns (see columns.go for the others).
const (
	PurposeMessageSubject = "message_threads.subject"
	PurposeMessageBody    = "messages.body"
)

// A thread's subject is bound to the thread, and a message body to its
// thread and its own ID, so a body copied into another message, or a
// message row moved to another thread, does not open. Subjects are
// sealed too: "Results of my biopsy" is health information.
func init() {
	Register(Column{Name: "message_threads.subject_sealed", Table: "message_threads", Sealed: "subject_sealed",
		Purpose: PurposeMessageSubject, Row: "id::text"})
	Register(Column{Name: "messages.body_sealed", Table: "messages", Sealed: "body_sealed",
		Purpose: PurposeMessageBody, Row: "thread_id::text || '|' || id::text"})
}

// MessageBodyRow is the Binding's Row of a message body: the same value
// as the Row expression registered for messages.body_sealed.
func MessageBodyRow(thread, message string) string { return thread + "|" + message }
