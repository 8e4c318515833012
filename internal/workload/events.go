package workload

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// rhythm is how a kind of traffic follows the clock: its level at night and at weekends,
// relative to 1 at 14:00 local time on a weekday.
type rhythm struct{ night, weekend float64 }

var (
	humanRhythm   = rhythm{0.06, 0.25} // people and their pipelines: EC2 launches, volumes
	trafficRhythm = rhythm{0.3, 0.7}   // customer traffic: Lambda invocations
	noiseRhythm   = rhythm{0.15, 0.4}  // everything else
)

// level returns the rhythm's factor at time t in the account's zone: a smooth daily wave peaking at
// 14:00 local, flat at night.
func (a *account) level(t time.Time, rh rhythm) float64 {
	lt := t.Add(time.Duration(a.UTCOffset) * time.Hour)
	h := float64(lt.Hour()) + float64(lt.Minute())/60
	c := (1 + math.Cos(2*math.Pi*(h-14)/24)) / 2
	f := rh.night + (1-rh.night)*c*c
	if wd := lt.Weekday(); wd == time.Saturday || wd == time.Sunday {
		f *= rh.weekend
	}
	return f
}

var (
	standardTypes = []string{"t3.micro", "t3.small", "t3.medium", "t3.large", "m5.large", "m5.xlarge", "m5.2xlarge", "c5.large", "c5.xlarge", "c5.2xlarge"}
	gpuTypes      = []string{"p3.2xlarge", "p3.8xlarge", "p3.16xlarge", "p4d.24xlarge", "g5.xlarge", "g5.12xlarge", "g5.48xlarge"}
	volumeSizes   = []int{8, 8, 20, 30, 30, 50, 100, 100, 200, 500}
)

// IsGPUInstanceType reports whether t is one of the GPU types only gpu_mining incidents launch.
func IsGPUInstanceType(t string) bool {
	for _, g := range gpuTypes {
		if g == t {
			return true
		}
	}
	return false
}

// background adds the normal events of minute m (unix seconds) to b.
func (b *batch) background(m int64) {
	a, r := b.a, b.r
	t := time.Unix(m, 0)
	share := a.regionShare[b.region]
	for _, f := range a.functions {
		if f.region != b.region {
			continue
		}
		for range poisson(r, f.rate*a.level(t, trafficRhythm)) {
			b.invoke(m+r.Int64N(60), f, nil, 0)
		}
	}
	if share == 0 {
		return
	}
	human := a.level(t, humanRhythm) * share
	for range poisson(r, a.runRate*human) {
		b.backgroundRun(m + r.Int64N(60))
	}
	for range poisson(r, a.volRate*human) {
		b.backgroundVolume(m + r.Int64N(60))
	}
	for range poisson(r, a.noiseRate*a.level(t, noiseRhythm)*share) {
		b.noise(m + r.Int64N(60))
	}
}

// invoke adds a lambda:Invoke of f. caller, when not nil, is a recursive caller (lambda_loop) and
// throttle the probability of a TooManyRequestsException.
func (b *batch) invoke(t int64, f *function, caller *principal, throttle float64) {
	r := b.r
	var s principalSession
	req := &invokeParams{FunctionName: f.arn}
	switch {
	case caller != nil:
		s = b.as(caller)
		req.FunctionName, req.InvocationType = f.name, "Event"
	case f.source == "sdk":
		s = b.as(f.caller)
		switch u := r.Float64(); {
		case u < 0.6:
			req.FunctionName = f.name
		case u < 0.8:
			req.FunctionName = b.a.ID + ":function:" + f.name
		}
	case f.source == "apigateway":
		s = b.as(serviceAPIGateway)
		if f.alias != "" {
			req.FunctionName = f.arn + ":" + f.alias
		}
		req.SourceArn = f.sourceArn
	case f.source == "events":
		s = b.as(serviceEvents)
		req.InvocationType, req.SourceArn, req.SourceAccount = "Event", f.sourceArn, b.a.ID
	default: // s3
		s = b.as(serviceS3)
		req.InvocationType, req.SourceArn, req.SourceAccount = "Event", f.sourceArn, b.a.ID
	}
	rec := b.call(t, s, "lambda.amazonaws.com", "Invoke", false)
	rec.RequestParameters = req
	rec.AdditionalEventData = &functionVersion{f.arn + ":" + strconv.Itoa(f.version)}
	rec.Resources = []resource{{b.a.ID, "AWS::Lambda::Function", f.arn}}
	rec.ManagementEvent, rec.EventCategory = false, "Data"
	if r.Float64() < 0.002+throttle {
		rec.ErrorCode, rec.ErrorMessage = "TooManyRequestsException", "Rate Exceeded."
	}
	b.emit(t, rec)
}

type invokeParams struct {
	FunctionName   string `json:"functionName"`
	InvocationType string `json:"invocationType,omitempty"`
	SourceArn      string `json:"sourceArn,omitempty"`
	SourceAccount  string `json:"sourceAccount,omitempty"`
}

type functionVersion struct {
	FunctionVersion string `json:"functionVersion"`
}

func (b *batch) backgroundRun(t int64) {
	r, a := b.r, b.a
	var s principalSession
	switch u := r.Float64(); {
	case u < 0.5:
		s = b.as(a.autoscaling)
	case u < 0.8:
		s = b.as(a.ci)
	case u < 0.95:
		s = b.as(a.humans)
	default:
		s = b.as(a.legacy)
	}
	count := 1
	if u := r.Float64(); u > 0.7 {
		count = 2 + r.IntN(3)
	}
	var code, msg string
	switch u := r.Float64(); {
	case u < 0.02:
		code, msg = "Server.InsufficientInstanceCapacity", "We currently do not have sufficient capacity in the Availability Zone you requested. Our system will be working on provisioning additional capacity."
	case u < 0.04:
		code, msg = "Client.UnauthorizedOperation", "You are not authorized to perform this operation. User: "+b.identity(t, s).ARN+" is not authorized to perform: ec2:RunInstances on resource: arn:aws:ec2:"+b.region+":"+a.ID+":instance/*"
	}
	b.runInstances(t, s, pick(r, standardTypes), count, code, msg)
}

// runInstances adds an ec2:RunInstances of count instances of itype, and returns its units.
func (b *batch) runInstances(t int64, s principalSession, itype string, count int, code, msg string) int {
	r, a := b.r, b.a
	ami := pick(r, a.amis)
	subnet := a.subnetPrefix + strconv.Itoa(r.IntN(3))
	zone := b.region + string(rune('a'+r.IntN(3)))
	req := obj{
		"instancesSet":          obj{"items": []obj{{"imageId": ami, "minCount": 1, "maxCount": count}}},
		"instanceType":          itype,
		"blockDeviceMapping":    obj{},
		"monitoring":            obj{"enabled": false},
		"subnetId":              subnet,
		"disableApiTermination": false,
		"disableApiStop":        false,
		"clientToken":           uuid(r),
	}
	if s.p == a.autoscaling {
		req["launchTemplate"] = obj{"launchTemplateId": "lt-0" + hashString(hexLow, 16, a.ID, "lt"), "version": strconv.Itoa(3 + r.IntN(5))}
		req["tagSpecificationSet"] = obj{"items": []obj{{"resourceType": "instance", "tags": []obj{{"key": "aws:autoscaling:groupName", "value": a.tmpl.team + "-asg"}}}}}
	}
	rec := b.call(t, s, "ec2.amazonaws.com", "RunInstances", false)
	rec.RequestParameters = req
	if code != "" {
		rec.ErrorCode, rec.ErrorMessage = code, msg
	} else {
		items := make([]obj, count)
		for i := range items {
			items[i] = obj{
				"instanceId":       "i-0" + randString(r, hexLow, 16),
				"imageId":          ami,
				"instanceState":    obj{"code": 0, "name": "pending"},
				"amiLaunchIndex":   i,
				"instanceType":     itype,
				"launchTime":       t * 1000,
				"placement":        obj{"availabilityZone": zone, "tenancy": "default"},
				"subnetId":         subnet,
				"privateIpAddress": fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), 4+r.IntN(250)),
			}
		}
		rec.ResponseElements = obj{
			"requestId":     rec.RequestID,
			"reservationId": "r-0" + randString(r, hexLow, 16),
			"ownerId":       a.ID,
			"groupSet":      obj{},
			"instancesSet":  obj{"items": items},
		}
	}
	b.emit(t, rec)
	return count
}

func (b *batch) backgroundVolume(t int64) {
	r, a := b.r, b.a
	var s principalSession
	switch u := r.Float64(); {
	case u < 0.4:
		s = b.as(a.ci)
	case u < 0.7:
		s = b.as(a.ebsCSI)
	default:
		s = b.as(a.humans)
	}
	vt := "gp3"
	if u := r.Float64(); u > 0.9 {
		vt = pick(r, []string{"gp2", "io2", "st1"})
	}
	code := ""
	if r.Float64() < 0.01 {
		code = "Client.UnauthorizedOperation"
	}
	b.createVolume(t, s, pick(r, volumeSizes), vt, code)
}

// createVolume adds an ec2:CreateVolume of size GiB (a string in requestParameters, as CloudTrail writes it).
func (b *batch) createVolume(t int64, s principalSession, size int, vt, code string) int {
	r := b.r
	zone := b.region + string(rune('a'+r.IntN(3)))
	sz := strconv.Itoa(size)
	rec := b.call(t, s, "ec2.amazonaws.com", "CreateVolume", false)
	rec.RequestParameters = obj{"size": sz, "zone": zone, "volumeType": vt, "encrypted": true, "clientToken": uuid(r)}
	if code != "" {
		rec.ErrorCode, rec.ErrorMessage = code, "You are not authorized to perform this operation."
	} else {
		resp := obj{"requestId": rec.RequestID, "volumeId": "vol-0" + randString(r, hexLow, 16), "size": sz, "zone": zone,
			"status": "creating", "createTime": t * 1000, "volumeType": vt, "encrypted": true, "multiAttachEnabled": false}
		if vt == "gp3" {
			resp["iops"], resp["throughput"] = 3000, 125
		}
		rec.ResponseElements = resp
	}
	b.emit(t, rec)
	return size
}

var (
	serviceAPIGateway = &principal{kind: kindService, name: "apigateway.amazonaws.com", agents: []string{"apigateway.amazonaws.com"}}
	serviceEvents     = &principal{kind: kindService, name: "events.amazonaws.com", agents: []string{"events.amazonaws.com"}}
	serviceS3         = &principal{kind: kindService, name: "s3.amazonaws.com", agents: []string{"s3.amazonaws.com"}}
	serviceLambda     = &principal{kind: kindService, name: "lambda.amazonaws.com", agents: []string{"lambda.amazonaws.com"}}
	serviceECSTasks   = &principal{kind: kindService, name: "ecs-tasks.amazonaws.com", agents: []string{"ecs-tasks.amazonaws.com"}}
)

// noiseAPIs are background calls of APIs outside the catalog, with their relative frequency.
var noiseAPIs = []struct {
	weight float64
	add    func(b *batch, t int64)
}{
	{16, (*batch).assumeRole},
	{14, (*batch).kmsDecrypt},
	{16, func(b *batch, t int64) { b.s3Object(t, "GetObject") }},
	{8, func(b *batch, t int64) { b.s3Object(t, "PutObject") }},
	{10, (*batch).describeInstances},
	{6, (*batch).getParameter},
	{4, (*batch).getSecretValue},
	{4, (*batch).describeVolumes},
	{3, (*batch).createTags},
	{5, (*batch).createLogStream},
	{3, (*batch).getCallerIdentity},
	{2, (*batch).listBuckets},
	{2, (*batch).getFunction},
	{0.5, (*batch).consoleLogin},
}

var noiseWeights = func() []float64 {
	w := make([]float64, len(noiseAPIs))
	for i, n := range noiseAPIs {
		w[i] = n.weight
	}
	return w
}()

func (b *batch) noise(t int64) { noiseAPIs[weighted(b.r, noiseWeights)].add(b, t) }

// workload returns a caller running the account's code: an app task or a function's role.
func (b *batch) workload() principalSession {
	if fs := b.a.functions; len(fs) > 0 && b.r.IntN(2) == 0 {
		return b.as(pick(b.r, fs).execRole)
	}
	return b.as(b.a.app)
}

func (b *batch) assumeRole(t int64) {
	r, a := b.r, b.a
	var s principalSession
	var role *principal
	if fs := a.functions; len(fs) > 0 && r.IntN(3) > 0 {
		s, role = b.as(serviceLambda), pick(r, fs).execRole
	} else {
		s, role = b.as(serviceECSTasks), a.app
	}
	session := role.name
	if len(role.sessions) > 0 {
		session = pick(r, role.sessions)
	}
	roleARN := "arn:aws:iam::" + a.ID + ":role/" + role.path + role.name
	rec := b.call(t, s, "sts.amazonaws.com", "AssumeRole", true)
	rec.RequestParameters = obj{"roleArn": roleARN, "roleSessionName": session, "durationSeconds": 3600}
	rec.ResponseElements = obj{
		"credentials": obj{
			"accessKeyId":  "ASIA" + randString(r, upperID, 16),
			"sessionToken": "IQoJb3JpZ2luX2VjE" + randString(r, alnum, 48),
			"expiration":   time.Unix(t+3600, 0).UTC().Format("Jan 2, 2006, 3:04:05 PM"),
		},
		"assumedRoleUser": obj{"assumedRoleId": role.id + ":" + session, "arn": "arn:aws:sts::" + a.ID + ":assumed-role/" + role.name + "/" + session},
	}
	rec.Resources = []resource{{a.ID, "AWS::IAM::Role", roleARN}}
	rec.SharedEventID = uuid(r)
	b.emit(t, rec)
}

func (b *batch) kmsDecrypt(t int64) {
	rec := b.call(t, b.workload(), "kms.amazonaws.com", "Decrypt", true)
	rec.RequestParameters = obj{"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}
	rec.Resources = []resource{{b.a.ID, "AWS::KMS::Key", "arn:aws:kms:" + b.region + ":" + b.a.ID + ":key/" + b.a.kmsKey}}
	b.emit(t, rec)
}

func (b *batch) s3Object(t int64, name string) {
	r, a := b.r, b.a
	s := b.workload()
	if r.IntN(10) == 0 {
		s = b.as(a.legacy)
	}
	bucket := pick(r, a.buckets)
	key := fmt.Sprintf("%s/%s/%s.%s", pick(r, []string{"data", "exports", "uploads", "tmp"}),
		time.Unix(t, 0).UTC().Format("2006/01/02"), randString(r, hexLow, 12), pick(r, []string{"json", "csv", "parquet", "png"}))
	rec := b.call(t, s, "s3.amazonaws.com", name, name == "GetObject")
	rec.RequestParameters = obj{"bucketName": bucket, "Host": bucket + ".s3." + b.region + ".amazonaws.com", "key": key}
	in, out := 0, 0
	if name == "GetObject" {
		out = 200 + r.IntN(2_000_000)
		if r.IntN(40) == 0 {
			rec.ErrorCode, rec.ErrorMessage, out = "NoSuchKey", "The specified key does not exist.", 0
		}
	} else {
		in = 200 + r.IntN(2_000_000)
	}
	rec.AdditionalEventData = obj{"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256", "bytesTransferredIn": in,
		"AuthenticationMethod": "AuthHeader", "x-amz-id-2": randString(r, alnum, 56) + "=", "bytesTransferredOut": out}
	rec.RequestID = randString(r, upperID[:26]+"0123456789", 16)
	rec.Resources = []resource{{"", "AWS::S3::Object", "arn:aws:s3:::" + bucket + "/" + key}, {a.ID, "AWS::S3::Bucket", "arn:aws:s3:::" + bucket}}
	rec.ManagementEvent, rec.EventCategory = false, "Data"
	b.emit(t, rec)
}

func (b *batch) describeInstances(t int64) {
	r, a := b.r, b.a
	s := b.as(pick(r, []*principal{a.configSvc, a.configSvc, a.humans, a.ci, a.autoscaling}))
	rec := b.call(t, s, "ec2.amazonaws.com", "DescribeInstances", true)
	rec.RequestParameters = obj{"instancesSet": obj{}, "filterSet": obj{}}
	if r.IntN(100) == 0 {
		rec.ErrorCode, rec.ErrorMessage = "Client.RequestLimitExceeded", "Request limit exceeded."
	}
	b.emit(t, rec)
}

func (b *batch) describeVolumes(t int64) {
	s := b.as(pick(b.r, []*principal{b.a.ebsCSI, b.a.configSvc}))
	rec := b.call(t, s, "ec2.amazonaws.com", "DescribeVolumes", true)
	rec.RequestParameters = obj{"volumeSet": obj{}, "filterSet": obj{}}
	b.emit(t, rec)
}

func (b *batch) createTags(t int64) {
	r := b.r
	s := b.as(pick(r, []*principal{b.a.autoscaling, b.a.ci}))
	rec := b.call(t, s, "ec2.amazonaws.com", "CreateTags", false)
	rec.RequestParameters = obj{
		"resourcesSet": obj{"items": []obj{{"resourceId": "i-0" + randString(r, hexLow, 16)}}},
		"tagSet":       obj{"items": []obj{{"key": "team", "value": b.a.tmpl.team}}},
	}
	rec.ResponseElements = obj{"requestId": rec.RequestID, "_return": true}
	b.emit(t, rec)
}

func (b *batch) getParameter(t int64) {
	rec := b.call(t, b.workload(), "ssm.amazonaws.com", "GetParameter", true)
	rec.RequestParameters = obj{"name": "/" + b.a.tmpl.team + "/" + pick(b.r, []string{"db/host", "api/key", "config/feature-flags"}), "withDecryption": true}
	b.emit(t, rec)
}

func (b *batch) getSecretValue(t int64) {
	a := b.a
	rec := b.call(t, b.workload(), "secretsmanager.amazonaws.com", "GetSecretValue", true)
	rec.RequestParameters = obj{"secretId": "arn:aws:secretsmanager:" + b.region + ":" + a.ID + ":secret:" + a.tmpl.team + "/db-credentials-" + hashString(alnum, 6, a.ID)}
	b.emit(t, rec)
}

func (b *batch) createLogStream(t int64) {
	fs := b.a.functions
	if len(fs) == 0 {
		b.describeInstances(t)
		return
	}
	f := pick(b.r, fs)
	rec := b.call(t, b.as(f.execRole), "logs.amazonaws.com", "CreateLogStream", false)
	rec.RequestParameters = obj{"logGroupName": "/aws/lambda/" + f.name,
		"logStreamName": time.Unix(t, 0).UTC().Format("2006/01/02") + "/[" + strconv.Itoa(f.version) + "]" + randString(b.r, hexLow, 32)}
	b.emit(t, rec)
}

func (b *batch) getCallerIdentity(t int64) {
	s := b.as(pick(b.r, []*principal{b.a.ci, b.a.humans, b.a.legacy}))
	rec := b.call(t, s, "sts.amazonaws.com", "GetCallerIdentity", true)
	b.emit(t, rec)
}

func (b *batch) listBuckets(t int64) {
	rec := b.call(t, b.as(b.a.humans), "s3.amazonaws.com", "ListBuckets", true)
	rec.RequestParameters = obj{"Host": "s3.amazonaws.com"}
	b.emit(t, rec)
}

func (b *batch) getFunction(t int64) {
	fs := b.a.functions
	if len(fs) == 0 {
		b.listBuckets(t)
		return
	}
	rec := b.call(t, b.as(b.a.ci), "lambda.amazonaws.com", "GetFunction20150331v2", true)
	rec.RequestParameters = obj{"functionName": pick(b.r, fs).name}
	b.emit(t, rec)
}

func (b *batch) consoleLogin(t int64) {
	s := b.as(b.a.humans)
	s.ua = pick(b.r, consoleAgents)
	rec := b.call(t, s, "signin.amazonaws.com", "ConsoleLogin", false)
	rec.EventType, rec.RequestID = "AwsConsoleSignIn", ""
	rec.ResponseElements = obj{"ConsoleLogin": "Success"}
	rec.AdditionalEventData = obj{"LoginTo": "https://console.aws.amazon.com/console/home?region=" + b.region, "MobileVersion": "No", "MFAUsed": "Yes"}
	rec.TLSDetails.ClientProvidedHostHeader = "signin.aws.amazon.com"
	b.emit(t, rec)
}
