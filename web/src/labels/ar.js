// The prompt's built-in labels in this language (web/src/ui.js, KEYS), a chunk of its own:
// web/dist/loopwise-labels-ar.js, loaded only by a page that needs them.
export default 'مشاركة|نسخ الرابط|ليس الآن|إغلاق|تم نسخ الرابط.|انسخ هذا الرابط:|البريد الإلكتروني|LinkedIn|X|WhatsApp';
